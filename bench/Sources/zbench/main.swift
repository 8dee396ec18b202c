print("zbench: not yet")
