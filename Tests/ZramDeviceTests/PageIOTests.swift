import Testing
import ZramDevice
import ZramTestSupport

@Suite struct PageIOTests {
    @Test func placeholder() {}
}
