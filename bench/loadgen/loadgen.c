/* loadgen: the one closed-loop load generator of zramd's benchmarks (bench-peers, bench-tier), so that
 * zramd, nginx, memcached and Redis see the same keys, values, request mix and client cost.
 *
 *   loadgen --proto http|memcache|redis --port P --keys N --values FILE
 *           [--mode run|load|small|fill] [--op get|put] [--put FRACTION] [--zipf S] [--batch B]
 *           [--conns C] [--threads T] [--seconds S] [--seed X] [--path-fmt FMT] [--server-pid PID]
 *
 * Keys: key k is zramd page slot k (HTTP: GET/PUT of --path-fmt with k, default /dev/zram0/pages/%d;
 * nginx is served the same pages as files, e.g. --path-fmt /pages/%d; a format with no %d requests
 * that one path, as key 0), memcached and Redis key "key:%012d".
 * Values: FILE holds whole 4096-byte pages; the value of key k is page k % pages, for every write
 * (load and run mode alike), so that every GET reply can be compared byte for byte.
 * run:   each connection keeps one request in flight (closed loop, no pipelining) for --seconds;
 *        keys uniform over the N keys, or Zipf(S) with --zipf S > 0 (ranks mapped to keys by a seeded
 *        permutation: hot keys scattered); a fraction --put of the requests are PUT/set (--op get: 0,
 *        --op put: 1). --batch B: every GET asks for keys k .. k+B-1 in one request (HTTP: the path
 *        names the first key, e.g. /dev/zram0/pages?from=%d&count=64; memcached: get with B keys;
 *        Redis: MGET), the reply must hold B pages.
 * load:  every key once, in order, spread over the connections (PUT/set).
 * small: every key once with a 10-byte value (memcached: the slab class that later holds extstore's
 *        item headers gets its pages before the 4 KiB items take the whole budget).
 * fill:  GET every key once and set the missing ones again: "misses" counts those.
 * Failed request: HTTP status not 2xx, memcached/Redis miss or error reply, a GET body that is not
 * the key's page(s) (length, first and last 64 bytes of each page; every byte in every 16th reply of
 * a connection), a closed connection. Latency: send of the request to the last byte of its reply.
 * --server-pid PID: the server's CPU time (utime + stime + cutime + cstime of PID and every live
 * descendant, e.g. nginx's workers, from /proc/PID/stat) over the run, per request, next to the
 * loader's own (getrusage) — the loader must cost a small fraction of what the server does.
 * Prints one JSON object on stdout. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define SMALL 10
#define KEYLEN 16 /* "key:%012d" */
enum { HTTP, MEMCACHE, REDIS };
enum { OP_GET, OP_PUT };
static const char *proto_names[] = { "http", "memcache", "redis" };

static int proto = HTTP, port, nkeys, conns = 32, nthreads = 1, batch = 1, load_mode, fill_mode, small_mode;
static double seconds = 10, zipf_s = 0, put_ratio = 0;
static uint64_t seed = 42;
static const char *path_fmt = "/dev/zram0/pages/%d";
static int path_has_key = 1;
static int server_pid;
static unsigned char *values;
static int npages;
static double *cdf;     /* Zipf CDF over ranks */
static int *rank_key;   /* rank -> key */
static volatile int stop_flag;
static int next_load_key; /* load, small, fill: next key (shared, atomic) */

typedef struct {
    uint32_t *lat; size_t n, cap;
} lats_t;

typedef struct {
    int fd, op, key, ep, want_out, refill;
    uint64_t t0, replies;
    char *out; size_t out_len, out_off, out_cap;
    char *in; size_t in_len, in_cap;
    uint64_t rng;
} conn_t;

typedef struct {
    int id, nconns;
    conn_t *c;
    uint64_t gets, puts, failed, misses, bad_status, mismatched, closed;
    lats_t all, get, put;
    char first_error[160];
} thr_t;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static uint64_t xr(uint64_t *s) { /* xorshift64* */
    uint64_t x = *s;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}
static double urand(uint64_t *s) { return (xr(s) >> 11) * (1.0 / 9007199254740992.0); }

static void push(lats_t *l, uint32_t v) {
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1 << 16;
        l->lat = realloc(l->lat, l->cap * sizeof *l->lat);
        if (!l->lat) { perror("realloc"); exit(2); }
    }
    l->lat[l->n++] = v;
}

/* A key whose batch k .. k+batch-1 lies within the keys. */
static int draw_key(uint64_t *s) {
    int span = nkeys - batch + 1;
    if (zipf_s <= 0) return (int)(xr(s) % (uint64_t)span);
    double u = urand(s);
    int lo = 0, hi = nkeys - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cdf[mid] >= u) hi = mid; else lo = mid + 1;
    }
    int k = rank_key[lo];
    return k < span ? k : span - 1;
}

static const unsigned char *page_of(int key) { return values + (size_t)(key % npages) * PAGE; }

static void fail(thr_t *t, const char *what, const char *detail) {
    t->failed++;
    if (!t->first_error[0])
        snprintf(t->first_error, sizeof t->first_error, "%s: %.100s", what, detail ? detail : "");
}

static void put_bytes(conn_t *c, const void *p, size_t n) {
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

static void put_key(conn_t *c, int key) { c->out_len += sprintf(c->out + c->out_len, "key:%012d", key); }

static void build_request(conn_t *c, int op, int key) {
    if (proto == HTTP && !path_has_key) key = 0; /* one fixed path: it holds key 0's page(s) */
    c->op = op; c->key = key;
    c->out_len = 0;
    const unsigned char *v = page_of(key);
    int len = small_mode ? SMALL : PAGE;
    if (proto == HTTP) {
        c->out_len = sprintf(c->out, op == OP_GET ? "GET " : "PUT ");
        c->out_len += path_has_key ? sprintf(c->out + c->out_len, path_fmt, key)
                                   : sprintf(c->out + c->out_len, "%s", path_fmt);
        if (op == OP_GET)
            c->out_len += sprintf(c->out + c->out_len, " HTTP/1.1\r\nHost: z\r\n\r\n");
        else {
            c->out_len += sprintf(c->out + c->out_len, " HTTP/1.1\r\nHost: z\r\nContent-Length: %d\r\n\r\n", len);
            put_bytes(c, v, len);
        }
    } else if (proto == MEMCACHE) {
        if (op == OP_GET) {
            put_bytes(c, "get", 3);
            for (int i = 0; i < batch; i++) { put_bytes(c, " ", 1); put_key(c, key + i); }
            put_bytes(c, "\r\n", 2);
        } else {
            put_bytes(c, "set ", 4);
            put_key(c, key);
            c->out_len += sprintf(c->out + c->out_len, " 0 0 %d\r\n", len);
            put_bytes(c, v, len);
            put_bytes(c, "\r\n", 2);
        }
    } else {
        if (op == OP_GET) {
            if (batch == 1) put_bytes(c, "*2\r\n$3\r\nGET\r\n", 13);
            else c->out_len += sprintf(c->out + c->out_len, "*%d\r\n$4\r\nMGET\r\n", batch + 1);
            for (int i = 0; i < batch; i++) {
                put_bytes(c, "$16\r\n", 5);
                put_key(c, key + i);
                put_bytes(c, "\r\n", 2);
            }
        } else {
            put_bytes(c, "*3\r\n$3\r\nSET\r\n$16\r\n", 18);
            put_key(c, key);
            c->out_len += sprintf(c->out + c->out_len, "\r\n$%d\r\n", len);
            put_bytes(c, v, len);
            put_bytes(c, "\r\n", 2);
        }
    }
    c->out_off = 0;
}

/* Returns 1 when a request was queued, 0 when there is nothing more to send. */
static int next_request(conn_t *c) {
    if (fill_mode) { /* GET every key; set the ones that are missing (memcached after evictions) */
        if (c->refill) { c->refill = 0; build_request(c, OP_PUT, c->key); return 1; }
        int k = __atomic_fetch_add(&next_load_key, 1, __ATOMIC_RELAXED);
        if (k >= nkeys) return 0;
        build_request(c, OP_GET, k);
        return 1;
    }
    if (load_mode) {
        int k = __atomic_fetch_add(&next_load_key, 1, __ATOMIC_RELAXED);
        if (k >= nkeys) return 0;
        build_request(c, OP_PUT, k);
        return 1;
    }
    if (stop_flag) return 0;
    int put = put_ratio >= 1 || (put_ratio > 0 && urand(&c->rng) < put_ratio);
    build_request(c, put ? OP_PUT : OP_GET, draw_key(&c->rng));
    return 1;
}

/* Sends what it can; asks epoll for EPOLLOUT only while part of a request is still unsent. */
static int do_send(conn_t *c) {
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno != EAGAIN) return -1;
            break;
        }
        c->out_off += w;
    }
    int want = c->out_off < c->out_len;
    if (want != c->want_out) {
        struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c };
        epoll_ctl(c->ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = want;
    }
    return 0;
}

/* A reply line's text for an error message, without its CRLF. */
static void describe(char *d, size_t dn, const char *what, int key, const char *b, size_t line) {
    int n = line >= 2 ? (int)(line - 2) : 0;
    snprintf(d, dn, "%s key %d: %.*s", what, key, n < 80 ? n : 80, b);
}

/* Compares a GET's page i (key c->key + i) with what the key holds; counts a mismatch once per reply.
 * The first and last 64 bytes of every page, all of it in every 16th reply of a connection: comparing
 * every byte reads the page from the corpus, cold in cache, and costs the loader ~10 % more CPU. */
static int same_page(thr_t *t, conn_t *c, int i, const char *body, size_t len, int *ok) {
    const unsigned char *want = page_of(c->key + i);
    if (len == PAGE && ((c->replies & 15) == 0 ? memcmp(body, want, PAGE) == 0
                        : memcmp(body, want, 64) == 0 && memcmp(body + PAGE - 64, want + PAGE - 64, 64) == 0))
        return 1;
    if (*ok) {
        t->mismatched++;
        char d[80]; snprintf(d, sizeof d, "key %d: %zu bytes, not its page", c->key + i, len);
        fail(t, proto_names[proto], d);
    }
    *ok = 0;
    return 0;
}

static size_t parse_http(thr_t *t, conn_t *c, int *ok) {
    char *b = c->in;
    size_t n = c->in_len;
    char *end = memmem(b, n, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t head = end - b + 4;
    size_t clen = 0;
    for (char *p = b; p < end; ) {
        char *nl = memmem(p, end - p, "\r\n", 2);
        if (!nl) nl = end;
        if ((size_t)(nl - p) > 15 && strncasecmp(p, "content-length:", 15) == 0) clen = strtoul(p + 15, NULL, 10);
        p = nl + 2;
    }
    if (n < head + clen) return 0;
    int status = n > 12 ? atoi(b + 9) : 0;
    if (status < 200 || status > 299) {
        t->bad_status++;
        *ok = 0;
        char tmp[64]; snprintf(tmp, sizeof tmp, "%.*s", (int)(clen < 40 ? clen : 40), b + head);
        char d[140]; snprintf(d, sizeof d, "status %d key %d op %d %s", status, c->key, c->op, tmp);
        fail(t, "http", d);
    } else if (c->op == OP_GET) {
        if (clen != (size_t)batch * PAGE) {
            t->mismatched++;
            *ok = 0;
            char d[80]; snprintf(d, sizeof d, "GET key %d: body of %zu bytes, not %d pages", c->key, clen, batch);
            fail(t, "http", d);
        } else
            for (int i = 0; i < batch && same_page(t, c, i, b + head + (size_t)i * PAGE, PAGE, ok); i++) {}
    }
    return head + clen;
}

/* A store's one-line reply (memcached STORED, Redis +OK): its length, 0 if incomplete;
 * anything else fails the request. */
static size_t expect_line(thr_t *t, conn_t *c, int *ok, const char *want, const char *proto, const char *op) {
    char *nl = memmem(c->in, c->in_len, "\r\n", 2);
    if (!nl) return 0;
    size_t line = nl - c->in + 2;
    if (!(line == strlen(want) && memcmp(c->in, want, line) == 0)) {
        char d[140];
        *ok = 0; describe(d, sizeof d, op, c->key, c->in, line); fail(t, proto, d);
    }
    return line;
}

static size_t parse_memcache(thr_t *t, conn_t *c, int *ok) {
    char *b = c->in;
    size_t n = c->in_len;
    char d[140];
    if (c->op == OP_PUT) return expect_line(t, c, ok, "STORED\r\n", "memcache", "set");
    char *nl;
    size_t line;
    /* VALUE key:K FLAGS BYTES\r\n DATA\r\n ... END\r\n; absent keys are skipped */
    size_t off = 0;
    int found = 0;
    for (;;) {
        char *p = b + off;
        nl = memmem(p, n - off, "\r\n", 2);
        if (!nl) return 0;
        line = nl - p + 2;
        if (line == 5 && memcmp(p, "END\r\n", 5) == 0) { off += line; break; }
        if (line > 6 + KEYLEN && memcmp(p, "VALUE key:", 10) == 0) {
            char *sp = memrchr(p, ' ', line - 2);
            size_t bytes = strtoul(sp + 1, NULL, 10);
            if (n - off < line + bytes + 2) return 0;
            int key = atoi(p + 10);
            if (key < c->key || key >= c->key + batch) {
                if (*ok) { *ok = 0; describe(d, sizeof d, "get: a value for another key", c->key, p, line); fail(t, "memcache", d); }
            } else
                same_page(t, c, key - c->key, p + line, bytes, ok);
            off += line + bytes + 2;
            found++;
            continue;
        }
        /* an error line ends the reply */
        *ok = 0;
        describe(d, sizeof d, "get", c->key, p, line);
        fail(t, "memcache", d);
        return off + line;
    }
    if (found < batch) {
        t->misses += batch - found;
        if (fill_mode) { c->refill = 1; return off; }
        if (*ok) { *ok = 0; snprintf(d, sizeof d, "get key %d: %d of %d keys missing", c->key, batch - found, batch); fail(t, "memcache", d); }
    }
    return off;
}

/* One RESP bulk string at b (n bytes): its total length, 0 if incomplete; *len -1 for nil. */
static size_t resp_bulk(const char *b, size_t n, long *len, size_t *line) {
    const char *nl = memmem(b, n, "\r\n", 2);
    if (!nl) return 0;
    *line = nl - b + 2;
    if (b[0] != '$') { *len = -2; return *line; }
    *len = strtol(b + 1, NULL, 10);
    if (*len < 0) return *line;
    if (n < *line + *len + 2) return 0;
    return *line + *len + 2;
}

static size_t parse_redis(thr_t *t, conn_t *c, int *ok) {
    char *b = c->in;
    size_t n = c->in_len;
    char d[140];
    if (c->op == OP_PUT) return expect_line(t, c, ok, "+OK\r\n", "redis", "SET");
    char *nl = memmem(b, n, "\r\n", 2);
    if (!nl) return 0;
    size_t line = nl - b + 2;
    size_t off = 0;
    int items = 1;
    if (batch > 1) {
        if (b[0] != '*' || atoi(b + 1) != batch) {
            *ok = 0; describe(d, sizeof d, "MGET", c->key, b, line); fail(t, "redis", d);
            return line;
        }
        off = line;
        items = batch;
    }
    int missing = 0;
    for (int i = 0; i < items; i++) {
        long len;
        size_t l;
        size_t used = resp_bulk(b + off, n - off, &len, &l);
        if (!used) return 0;
        if (len == -2) { /* an error or other reply ends it */
            *ok = 0; describe(d, sizeof d, "GET", c->key + i, b + off, l); fail(t, "redis", d);
            return off + used;
        }
        if (len == -1) missing++;
        else same_page(t, c, i, b + off + l, (size_t)len, ok);
        off += used;
    }
    if (missing) {
        t->misses += missing;
        if (fill_mode) { c->refill = 1; return off; }
        if (*ok) { *ok = 0; snprintf(d, sizeof d, "GET key %d: %d of %d keys missing", c->key, missing, items); fail(t, "redis", d); }
    }
    return off;
}

/* Parses one reply at the head of c->in. Returns bytes consumed (>0), 0 if incomplete, sets *ok. */
static size_t parse_reply(thr_t *t, conn_t *c, int *ok) {
    *ok = 1;
    if (c->in_len == 0) return 0;
    return proto == HTTP ? parse_http(t, c, ok) : proto == MEMCACHE ? parse_memcache(t, c, ok) : parse_redis(t, c, ok);
}

static int connect_one(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { perror("connect"); exit(2); }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static void drop(thr_t *t, conn_t *c, int *active, const char *what, const char *detail) {
    fail(t, what, detail);
    t->closed++;
    close(c->fd);
    c->fd = -1;
    (*active)--;
}

static void *worker(void *arg) {
    thr_t *t = arg;
    int ep = epoll_create1(0);
    int active = 0;
    for (int i = 0; i < t->nconns; i++) {
        conn_t *c = &t->c[i];
        c->fd = connect_one();
        c->out_cap = PAGE + 512 + (size_t)batch * 32;
        c->out = malloc(c->out_cap);
        c->in_cap = (size_t)batch * (PAGE + 64) + 16384;
        c->in = malloc(c->in_cap);
        c->rng = seed * 0x9E3779B97F4A7C15ull + (uint64_t)(t->id * 1000 + i + 1) * 0xD1B54A32D192ED03ull;
        for (int k = 0; k < 4; k++) xr(&c->rng);
        c->ep = ep;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
        active++;
        if (next_request(c)) {
            c->t0 = now_ns();
            if (do_send(c) < 0) drop(t, c, &active, "send", strerror(errno));
        } else { close(c->fd); c->fd = -1; active--; }
    }
    struct epoll_event evs[256];
    while (active > 0) {
        int k = epoll_wait(ep, evs, 256, 200);
        for (int e = 0; e < k; e++) {
            conn_t *c = evs[e].data.ptr;
            if (c->fd < 0) continue;
            if (evs[e].events & EPOLLOUT && c->out_off < c->out_len) {
                if (do_send(c) < 0) { drop(t, c, &active, "send", strerror(errno)); continue; }
            }
            if (!(evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
            /* One recv per readable event (epoll is level-triggered: the rest, if any, comes back). */
            if (c->in_cap - c->in_len < PAGE) { c->in_cap *= 2; c->in = realloc(c->in, c->in_cap); }
            ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
            if (r < 0 && errno == EAGAIN) continue;
            if (r <= 0) { drop(t, c, &active, "connection closed", r < 0 ? strerror(errno) : "eof"); continue; }
            c->in_len += r;
            int ok;
            size_t used = parse_reply(t, c, &ok);
            if (!used) continue;
            c->replies++;
            uint64_t dt = (now_ns() - c->t0) / 1000;
            uint32_t us = dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
            push(&t->all, us);
            if (c->op == OP_GET) { t->gets++; push(&t->get, us); } else { t->puts++; push(&t->put, us); }
            if (used < c->in_len) { /* bytes nobody asked for: the stream is out of step */
                drop(t, c, &active, proto_names[proto], "reply longer than expected");
                continue;
            }
            c->in_len = 0;
            if (next_request(c)) {
                c->t0 = now_ns();
                if (do_send(c) < 0) drop(t, c, &active, "send", strerror(errno));
            } else {
                close(c->fd); c->fd = -1; active--;
            }
        }
    }
    close(ep);
    return NULL;
}

/* CPU seconds of pid and its live descendants: utime + stime + cutime + cstime (fields 14-17 of
 * /proc/PID/stat; each process's line covers all its threads and the children it has reaped). */
static double tree_cpu_seconds(int root) {
    int cap = 1024, n = 0;
    int *pids = malloc(cap * sizeof *pids), *ppids = malloc(cap * sizeof *ppids);
    long long *ticks = malloc(cap * sizeof *ticks);
    DIR *d = opendir("/proc");
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (!isdigit((unsigned char)de->d_name[0])) continue;
        char path[300], buf[1024];
        snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = 0;
        char *p = strrchr(buf, ')');
        if (!p) continue;
        /* after ")": state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17) */
        long long v[15] = { 0 };
        char *tok = strtok(p + 1, " ");
        for (int i = 0; tok && i < 15; i++, tok = strtok(NULL, " ")) v[i] = strtoll(tok, NULL, 10);
        if (n == cap) {
            cap *= 2;
            pids = realloc(pids, cap * sizeof *pids); ppids = realloc(ppids, cap * sizeof *ppids);
            ticks = realloc(ticks, cap * sizeof *ticks);
        }
        pids[n] = atoi(de->d_name); ppids[n] = (int)v[1]; ticks[n] = v[11] + v[12] + v[13] + v[14];
        n++;
    }
    if (d) closedir(d);
    char *in = calloc(n ? n : 1, 1);
    int found = 0;
    for (int i = 0; i < n; i++) if (pids[i] == root) { in[i] = 1; found = 1; }
    for (int changed = 1; changed; ) {
        changed = 0;
        for (int i = 0; i < n; i++)
            if (!in[i])
                for (int j = 0; j < n; j++)
                    if (in[j] && ppids[i] == pids[j]) { in[i] = 1; changed = 1; break; }
    }
    long long sum = 0;
    for (int i = 0; i < n; i++) if (in[i]) sum += ticks[i];
    free(pids); free(ppids); free(ticks); free(in);
    if (!found) { fprintf(stderr, "no process %d\n", root); exit(2); }
    return (double)sum / sysconf(_SC_CLK_TCK);
}

static double self_cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}
static double pctl(lats_t *l, double q) {
    if (!l->n) return 0;
    size_t i = (size_t)(q * l->n);
    if (i >= l->n) i = l->n - 1;
    return l->lat[i];
}
static void merge(lats_t *dst, lats_t *src) { for (size_t i = 0; i < src->n; i++) push(dst, src->lat[i]); }

/* A path format takes the key as its one %d (flags and width allowed), or no conversion at all. */
static int check_path_fmt(const char *f) {
    int conversions = 0;
    for (const char *p = f; *p; p++) {
        if (*p != '%') continue;
        if (p[1] == '%') { p++; continue; }
        p++;
        while (*p && strchr("0123456789-", *p)) p++;
        if (*p != 'd') return -1;
        conversions++;
    }
    return conversions <= 1 ? conversions : -1;
}

static void usage(void) {
    fprintf(stderr, "usage: loadgen --proto http|memcache|redis --port P --keys N --values FILE\n"
                    "  [--mode run|load|small|fill] [--op get|put] [--put FRACTION] [--zipf S] [--batch B]\n"
                    "  [--conns C] [--threads T] [--seconds S] [--seed X] [--path-fmt FMT] [--server-pid PID]\n"
                    "(see the comment at the top of bench/loadgen/loadgen.c)\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *vfile = NULL, *mode = "run";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (i + 1 >= argc) usage();
        if (!strcmp(a, "--proto")) {
            if (!strcmp(v, "http")) proto = HTTP;
            else if (!strcmp(v, "memcache")) proto = MEMCACHE;
            else if (!strcmp(v, "redis")) proto = REDIS;
            else usage();
        }
        else if (!strcmp(a, "--port")) port = atoi(v);
        else if (!strcmp(a, "--keys")) nkeys = atoi(v);
        else if (!strcmp(a, "--values")) vfile = v;
        else if (!strcmp(a, "--mode")) mode = v;
        else if (!strcmp(a, "--op")) {
            if (!strcmp(v, "get")) put_ratio = 0;
            else if (!strcmp(v, "put")) put_ratio = 1;
            else usage();
        }
        else if (!strcmp(a, "--put")) put_ratio = atof(v);
        else if (!strcmp(a, "--zipf")) zipf_s = atof(v);
        else if (!strcmp(a, "--batch")) batch = atoi(v);
        else if (!strcmp(a, "--conns")) conns = atoi(v);
        else if (!strcmp(a, "--threads")) nthreads = atoi(v);
        else if (!strcmp(a, "--seconds")) seconds = atof(v);
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--path-fmt")) path_fmt = v;
        else if (!strcmp(a, "--server-pid")) server_pid = atoi(v);
        else { fprintf(stderr, "unknown argument %s\n", a); usage(); }
        i++;
    }
    load_mode = !strcmp(mode, "load") || !strcmp(mode, "fill") || !strcmp(mode, "small");
    small_mode = !strcmp(mode, "small");
    fill_mode = !strcmp(mode, "fill");
    if (!load_mode && strcmp(mode, "run")) usage();
    int conv = check_path_fmt(path_fmt);
    if (conv < 0) { fprintf(stderr, "--path-fmt takes one %%d (the key) or none\n"); return 2; }
    path_has_key = conv == 1;
    if (!port || nkeys <= 0 || !vfile || nthreads < 1 || conns < nthreads || batch < 1 || batch > nkeys
        || batch > 1024 || put_ratio < 0 || put_ratio > 1) usage();
    if (batch > 1 && (put_ratio > 0 || load_mode)) { fprintf(stderr, "--batch is for GETs in run mode\n"); return 2; }
    FILE *f = fopen(vfile, "rb");
    if (!f) { perror(vfile); return 2; }
    struct stat st; fstat(fileno(f), &st);
    npages = st.st_size / PAGE;
    if (npages < 1) { fprintf(stderr, "%s holds no whole page\n", vfile); return 2; }
    values = malloc((size_t)npages * PAGE);
    if (fread(values, PAGE, npages, f) != (size_t)npages) { perror("read values"); return 2; }
    fclose(f);

    if (zipf_s > 0) { /* Zipf CDF and the rank -> key permutation, both from the seed only. */
        cdf = malloc(sizeof(double) * nkeys);
        double sum = 0;
        for (int r = 0; r < nkeys; r++) { sum += 1.0 / pow(r + 1, zipf_s); cdf[r] = sum; }
        for (int r = 0; r < nkeys; r++) cdf[r] /= sum;
        rank_key = malloc(sizeof(int) * nkeys);
        for (int r = 0; r < nkeys; r++) rank_key[r] = r;
        uint64_t ps = seed ^ 0x5DEECE66Dull;
        for (int r = nkeys - 1; r > 0; r--) { int j = xr(&ps) % (uint64_t)(r + 1); int x = rank_key[r]; rank_key[r] = rank_key[j]; rank_key[j] = x; }
    }

    thr_t *th = calloc(nthreads, sizeof *th);
    pthread_t *pt = calloc(nthreads, sizeof *pt);
    double server0 = server_pid ? tree_cpu_seconds(server_pid) : 0;
    double self0 = self_cpu_seconds();
    uint64_t t0 = now_ns();
    for (int i = 0; i < nthreads; i++) {
        th[i].id = i;
        th[i].nconns = conns / nthreads + (i < conns % nthreads);
        th[i].c = calloc(th[i].nconns, sizeof(conn_t));
        pthread_create(&pt[i], NULL, worker, &th[i]);
    }
    if (!load_mode) {
        struct timespec ts = { (time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9) };
        nanosleep(&ts, NULL);
        stop_flag = 1;
    }
    for (int i = 0; i < nthreads; i++) pthread_join(pt[i], NULL);
    double el = (now_ns() - t0) / 1e9;
    double self_cpu = self_cpu_seconds() - self0;
    double server_cpu = server_pid ? tree_cpu_seconds(server_pid) - server0 : 0;

    thr_t tot = {0};
    for (int i = 0; i < nthreads; i++) {
        tot.gets += th[i].gets; tot.puts += th[i].puts; tot.failed += th[i].failed; tot.misses += th[i].misses;
        tot.bad_status += th[i].bad_status; tot.mismatched += th[i].mismatched; tot.closed += th[i].closed;
        merge(&tot.all, &th[i].all); merge(&tot.get, &th[i].get); merge(&tot.put, &th[i].put);
        if (!tot.first_error[0] && th[i].first_error[0]) memcpy(tot.first_error, th[i].first_error, sizeof tot.first_error);
    }
    qsort(tot.all.lat, tot.all.n, 4, cmp_u32);
    qsort(tot.get.lat, tot.get.n, 4, cmp_u32);
    qsort(tot.put.lat, tot.put.n, 4, cmp_u32);
    uint64_t req = tot.gets + tot.puts;
    double per = req ? 1e6 / req : 0;
    for (char *p = tot.first_error; *p; p++) if (*p == '"' || *p == '\\' || (unsigned char)*p < 32) *p = '?';
    char pid_json[32] = "null", server_cpu_json[32] = "null", server_us_json[32] = "null";
    if (server_pid) {
        snprintf(pid_json, sizeof pid_json, "%d", server_pid);
        snprintf(server_cpu_json, sizeof server_cpu_json, "%.3f", server_cpu);
        snprintf(server_us_json, sizeof server_us_json, "%.3f", server_cpu * per);
    }
    printf("{\"proto\": \"%s\", \"mode\": \"%s\", \"seconds\": %.3f, \"conns\": %d, \"threads\": %d, \"keys\": %d, "
           "\"batch\": %d, \"zipf\": %.3f, \"put_ratio\": %.3f, \"requests\": %llu, \"gets\": %llu, \"puts\": %llu, "
           "\"failed\": %llu, \"misses\": %llu, \"bad_status\": %llu, \"mismatched\": %llu, \"closed\": %llu, "
           "\"req_s\": %.1f, \"p50_us\": %.0f, \"p99_us\": %.0f, \"p999_us\": %.0f, \"max_us\": %.0f, "
           "\"get_p50_us\": %.0f, \"get_p99_us\": %.0f, \"put_p50_us\": %.0f, \"put_p99_us\": %.0f, "
           "\"loader_cpu_s\": %.3f, \"loader_cpu_us_per_req\": %.3f, \"server_pid\": %s, \"server_cpu_s\": %s, "
           "\"server_cpu_us_per_req\": %s, \"first_error\": \"%s\"}\n",
           proto_names[proto], mode, el, conns, nthreads, nkeys, batch, zipf_s, put_ratio,
           (unsigned long long)req, (unsigned long long)tot.gets, (unsigned long long)tot.puts,
           (unsigned long long)tot.failed, (unsigned long long)tot.misses, (unsigned long long)tot.bad_status,
           (unsigned long long)tot.mismatched, (unsigned long long)tot.closed, req / el,
           pctl(&tot.all, 0.5), pctl(&tot.all, 0.99), pctl(&tot.all, 0.999), pctl(&tot.all, 1.0),
           pctl(&tot.get, 0.5), pctl(&tot.get, 0.99), pctl(&tot.put, 0.5), pctl(&tot.put, 0.99),
           self_cpu, self_cpu * per, pid_json, server_cpu_json, server_us_json, tot.first_error);
    return 0;
}
