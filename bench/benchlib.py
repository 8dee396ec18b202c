"""Shared by bench/http/run.py and bench/peers/run.py: free ports, nginx with a static 4 KiB
page, zramd on loopback, loading the corpus by batch PUT, wrk runs, RSS of a process."""
import http.client, json, os, re, signal, socket, subprocess, sys, time

PAGE = 4096
LUA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "http")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port, path, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", path)
            if c.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"server on port {port} did not answer {path}")


def wait_tcp(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing listens on port {port}")


def rss_bytes(pid):
    """VmRSS of the process, from /proc/PID/status."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def write_sample_files(work, corpus, slots):
    """The files the wrk scripts and nginx use: 512 spread corpus pages, one page, 64 pages."""
    sample = b"".join(corpus[i * PAGE:(i + 1) * PAGE] for i in range(0, slots, max(1, slots // 512)))[:512 * PAGE]
    open(os.path.join(work, "pages.bin"), "wb").write(sample)
    open(os.path.join(work, "page.bin"), "wb").write(corpus[:PAGE])
    open(os.path.join(work, "batch.bin"), "wb").write(corpus[:64 * PAGE])


def start_nginx(work, port, root=None, put_location=None):
    """nginx with 2 workers serving `root` (default `work`: page.bin, batch.bin) on 127.0.0.1:port.
    put_location (e.g. "/pages/"): PUT below it stores the body as a file (WebDAV module); its
    temp files go under `root`, so that storing is a rename within one file system."""
    conf = os.path.join(work, "nginx.conf")
    root = root or work
    temp = os.path.join(root, ".body-temp") if put_location else work
    dav = f"location {put_location} {{ dav_methods PUT; client_max_body_size 1m; }}" if put_location else ""
    # as root the workers keep root's uid, so that they can write into a temp dir only root may enter
    user = "user root;" if put_location and os.geteuid() == 0 else ""
    open(conf, "w").write(f"""
worker_processes 2;
{user}
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {temp};
    server {{ listen 127.0.0.1:{port}; root {root}; {dav} }}
}}
""")
    p = subprocess.Popen(["nginx", "-c", conf, "-g", "daemon off;"])
    wait_http(port, "/page.bin")
    return p


def start_zramd(binary, work, port, disksize, extra=(), log="zramd.log"):
    p = subprocess.Popen(
        [binary, "--listen", f"127.0.0.1:{port}", "--disksize", disksize,
         "--data-dir", os.path.join(work, "data"), *extra], stderr=open(os.path.join(work, log), "w"))
    wait_http(port, "/healthz")
    return p


def stop(proc, sig=signal.SIGTERM, timeout=30):
    """Stop one process we started (by its own pid); kill it if it does not exit in time."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def zramd_attr(port, attr, body, dev=0):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    c.request("PUT", f"/sys/block/zram{dev}/{attr}", body=body.encode())
    r = c.getresponse()
    text = r.read()
    if r.status != 204:
        raise RuntimeError(f"PUT {attr}={body}: {r.status} {text!r}")


def zramd_read(port, attr, dev=0):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", f"/sys/block/zram{dev}/{attr}")
    r = c.getresponse()
    return r.read().decode()


def load_zramd(port, corpus, first_slot=0, batch=64):
    """PUT the corpus pages from slot `first_slot` on, `batch` pages per request."""
    c = http.client.HTTPConnection("127.0.0.1", port)
    slots = len(corpus) // PAGE
    for first in range(0, slots, batch):
        c.request("PUT", f"/dev/zram0/pages?from={first_slot + first}", body=corpus[first * PAGE:(first + batch) * PAGE])
        r = c.getresponse()
        r.read()
        assert r.status == 204, r.status


def wrk(port, script, connections, seconds, env):
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", os.path.join(LUA, script),
         f"http://127.0.0.1:{port}"], env=env, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def ms(label):
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        sys.exit(f"{script}: {errors.group(1)} error responses\n{out}")
    return {"req_s": rps, "p50_ms": ms("50"), "p99_ms": ms("99")}


def wrk_env(work, slots):
    return dict(os.environ, ZBENCH_LUA=LUA, ZBENCH_PAGES=os.path.join(work, "pages.bin"), ZBENCH_SLOTS=str(slots))


def run_loadgen(loader, timeout=600, **options):
    """One run of bench/loadgen, its JSON. Each option becomes `--name value` (underscores as
    dashes; None is left out)."""
    argv = [loader]
    for name, value in options.items():
        if value is not None:
            argv += ["--" + name.replace("_", "-"), str(value)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {out.stderr}")
    return json.loads(out.stdout)
