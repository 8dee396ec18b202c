/* tierload: one closed-loop epoll load generator for zramd (HTTP/1.1) and memcached (text protocol),
 * so both servers see the same keys, values, request mix and client cost.
 *
 *   tierload --proto http|memcache --port P --keys N --values FILE
 *            [--mode run|load] [--conns C] [--threads T] [--seconds S] [--zipf 0.99] [--put 0.10] [--seed X]
 *
 * Key k: zramd page slot k (GET/PUT /dev/zram0/pages/k), memcached key "key:%012d".
 * Values: FILE holds whole 4096-byte pages; the value of key k is page k % pages (load mode);
 * a PUT in run mode writes a page chosen by the same seeded generator for both protocols.
 * run:  each connection keeps one request in flight; keys drawn from Zipf(s) over N keys,
 *       ranks mapped to keys by a seeded permutation (hot keys scattered); a fraction --put are PUT/set.
 * load: every key once, in order, spread over the connections.
 * small: (memcache) every key once with a 10-byte value: the slab class that later holds extstore's
 *        item headers gets its pages before the 4 KiB items take the whole budget.
 * fill: (memcache) GET every key once and set the missing ones again: "misses" counts those.
 * Failed request: HTTP status not 2xx, memcached miss (END without VALUE) or error line, a body that
 * is not one page, a closed connection. Latency: send of the request to the last byte of its reply.
 * Prints one JSON object on stdout. */
#define _GNU_SOURCE
#include <arpa/inet.h>
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
enum { HTTP, MEMCACHE };
enum { OP_GET, OP_PUT };

static int proto = HTTP, port, nkeys, conns = 32, nthreads = 1, load_mode, fill_mode, small_mode;
static double seconds = 10, zipf_s = 0.99, put_ratio = 0.10;
static uint64_t seed = 42;
static unsigned char *values;
static int npages;
static double *cdf;     /* Zipf CDF over ranks */
static int *rank_key;   /* rank -> key */
static volatile int stop_flag;
static int next_load_key; /* load mode: next key to set (shared, atomic) */

typedef struct {
    uint32_t *lat; size_t n, cap;
} lats_t;

typedef struct {
    int fd, op, key, ep, want_out, refill;
    uint64_t t0;
    char *out; size_t out_len, out_off;
    char *in; size_t in_len, in_cap;
    uint64_t rng;
} conn_t;

typedef struct {
    int id, nconns;
    conn_t *c;
    uint64_t gets, puts, failed, misses, bad_status, closed;
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

static int zipf_key(uint64_t *s) {
    double u = urand(s);
    int lo = 0, hi = nkeys - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cdf[mid] >= u) hi = mid; else lo = mid + 1;
    }
    return rank_key[lo];
}

static void fail(thr_t *t, const char *what, const char *detail) {
    t->failed++;
    if (!t->first_error[0])
        snprintf(t->first_error, sizeof t->first_error, "%s: %.100s", what, detail ? detail : "");
}

static void build_request(conn_t *c, int op, int key, int page) {
    c->op = op; c->key = key;
    const unsigned char *v = values + (size_t)page * PAGE;
    if (proto == HTTP) {
        if (op == OP_GET)
            c->out_len = sprintf(c->out, "GET /dev/zram0/pages/%d HTTP/1.1\r\nHost: z\r\n\r\n", key);
        else {
            c->out_len = sprintf(c->out, "PUT /dev/zram0/pages/%d HTTP/1.1\r\nHost: z\r\nContent-Length: %d\r\n\r\n", key, PAGE);
            memcpy(c->out + c->out_len, v, PAGE);
            c->out_len += PAGE;
        }
    } else {
        if (op == OP_GET)
            c->out_len = sprintf(c->out, "get key:%012d\r\n", key);
        else {
            int len = small_mode ? 10 : PAGE;
            c->out_len = sprintf(c->out, "set key:%012d 0 0 %d\r\n", key, len);
            memcpy(c->out + c->out_len, v, len);
            c->out_len += len;
            memcpy(c->out + c->out_len, "\r\n", 2);
            c->out_len += 2;
        }
    }
    c->out_off = 0;
}

/* Returns 1 when a request was queued, 0 when there is nothing more to send. */
static int next_request(conn_t *c) {
    if (fill_mode) { /* GET every key; set the ones that are missing (memcached after evictions) */
        if (c->refill) { c->refill = 0; build_request(c, OP_PUT, c->key, c->key % npages); return 1; }
        int k = __atomic_fetch_add(&next_load_key, 1, __ATOMIC_RELAXED);
        if (k >= nkeys) return 0;
        build_request(c, OP_GET, k, 0);
        return 1;
    }
    if (load_mode) {
        int k = __atomic_fetch_add(&next_load_key, 1, __ATOMIC_RELAXED);
        if (k >= nkeys) return 0;
        build_request(c, OP_PUT, k, k % npages);
        return 1;
    }
    if (stop_flag) return 0;
    int put = urand(&c->rng) < put_ratio;
    int key = zipf_key(&c->rng);
    int page = (int)(xr(&c->rng) % (uint64_t)npages);
    build_request(c, put ? OP_PUT : OP_GET, key, page);
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

/* Parses one reply at the head of c->in. Returns bytes consumed (>0), 0 if incomplete, sets *ok. */
static size_t parse_reply(thr_t *t, conn_t *c, int *ok) {
    char *b = c->in;
    size_t n = c->in_len;
    *ok = 1;
    if (proto == HTTP) {
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
        int status = atoi(b + 9);
        if (status < 200 || status > 299) {
            t->bad_status++;
            *ok = 0;
            char tmp[64]; snprintf(tmp, sizeof tmp, "%.*s", (int)((clen < 40 ? clen : 40)), b + head);
            char d[140]; snprintf(d, sizeof d, "status %d key %d op %d %s", status, c->key, c->op, tmp);
            fail(t, "http", d);
        } else if (c->op == OP_GET && clen != PAGE) {
            *ok = 0; fail(t, "http", "GET body is not one page");
        }
        return head + clen;
    }
    char *nl = memmem(b, n, "\r\n", 2);
    if (!nl) return 0;
    size_t line = nl - b + 2;
    if (c->op == OP_PUT) {
        if (!(line == 8 && memcmp(b, "STORED\r\n", 8) == 0)) {
            *ok = 0;
            char d[120]; snprintf(d, sizeof d, "set key %d: %.*s", c->key, (int)(line - 2 < 80 ? line - 2 : 80), b);
            fail(t, "memcache", d);
        }
        return line;
    }
    if (line == 5 && memcmp(b, "END\r\n", 5) == 0) {
        t->misses++;
        if (fill_mode) { c->refill = 1; return line; }
        *ok = 0;
        char d[60]; snprintf(d, sizeof d, "miss key %d", c->key);
        fail(t, "memcache", d);
        return line;
    }
    if (line > 6 && memcmp(b, "VALUE ", 6) == 0) {
        char *sp = memrchr(b, ' ', line - 2);
        size_t bytes = strtoul(sp + 1, NULL, 10);
        size_t total = line + bytes + 2 + 5;
        if (n < total) return 0;
        if (bytes != PAGE || memcmp(b + line + bytes, "\r\nEND\r\n", 7) != 0) { *ok = 0; fail(t, "memcache", "bad VALUE reply"); }
        return total;
    }
    *ok = 0;
    char d[120]; snprintf(d, sizeof d, "get key %d: %.*s", c->key, (int)(line - 2 < 80 ? line - 2 : 80), b);
    fail(t, "memcache", d);
    return line;
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

static void *worker(void *arg) {
    thr_t *t = arg;
    int ep = epoll_create1(0);
    int active = 0;
    for (int i = 0; i < t->nconns; i++) {
        conn_t *c = &t->c[i];
        c->fd = connect_one();
        c->out = malloc(PAGE + 256);
        c->in_cap = 4 * PAGE + 1024;
        c->in = malloc(c->in_cap);
        c->rng = seed * 0x9E3779B97F4A7C15ull + (uint64_t)(t->id * 1000 + i + 1) * 0xD1B54A32D192ED03ull;
        for (int k = 0; k < 4; k++) xr(&c->rng);
        c->ep = ep;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
        if (next_request(c)) {
            c->t0 = now_ns();
            if (do_send(c) < 0) { fail(t, "send", strerror(errno)); close(c->fd); c->fd = -1; continue; }
            active++;
        } else { close(c->fd); c->fd = -1; }
    }
    struct epoll_event evs[256];
    while (active > 0) {
        int k = epoll_wait(ep, evs, 256, 200);
        for (int e = 0; e < k; e++) {
            conn_t *c = evs[e].data.ptr;
            if (c->fd < 0) continue;
            if (evs[e].events & EPOLLOUT && c->out_off < c->out_len) {
                if (do_send(c) < 0) { fail(t, "send", strerror(errno)); t->closed++; close(c->fd); c->fd = -1; active--; continue; }
            }
            if (!(evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
            for (;;) {
                if (c->in_cap - c->in_len < PAGE) { c->in_cap *= 2; c->in = realloc(c->in, c->in_cap); }
                ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
                if (r < 0 && errno == EAGAIN) break;
                if (r <= 0) { fail(t, "connection closed", r < 0 ? strerror(errno) : "eof"); t->closed++; close(c->fd); c->fd = -1; active--; break; }
                c->in_len += r;
            }
            if (c->fd < 0) continue;
            int ok;
            size_t used = parse_reply(t, c, &ok);
            if (!used) continue;
            uint64_t dt = (now_ns() - c->t0) / 1000;
            uint32_t us = dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
            push(&t->all, us);
            if (c->op == OP_GET) { t->gets++; push(&t->get, us); } else { t->puts++; push(&t->put, us); }
            memmove(c->in, c->in + used, c->in_len - used);
            c->in_len -= used;
            (void)ok;
            if (next_request(c)) {
                c->t0 = now_ns();
                if (do_send(c) < 0) { fail(t, "send", strerror(errno)); t->closed++; close(c->fd); c->fd = -1; active--; }
            } else {
                close(c->fd); c->fd = -1; active--;
            }
        }
    }
    close(ep);
    return NULL;
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

int main(int argc, char **argv) {
    const char *vfile = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--proto")) { proto = !strcmp(v, "memcache") ? MEMCACHE : HTTP; i++; }
        else if (!strcmp(a, "--port")) { port = atoi(v); i++; }
        else if (!strcmp(a, "--keys")) { nkeys = atoi(v); i++; }
        else if (!strcmp(a, "--values")) { vfile = v; i++; }
        else if (!strcmp(a, "--mode")) { load_mode = !strcmp(v, "load") || !strcmp(v, "fill") || !strcmp(v, "small");
                                            small_mode = !strcmp(v, "small"); fill_mode = !strcmp(v, "fill"); i++; }
        else if (!strcmp(a, "--conns")) { conns = atoi(v); i++; }
        else if (!strcmp(a, "--threads")) { nthreads = atoi(v); i++; }
        else if (!strcmp(a, "--seconds")) { seconds = atof(v); i++; }
        else if (!strcmp(a, "--zipf")) { zipf_s = atof(v); i++; }
        else if (!strcmp(a, "--put")) { put_ratio = atof(v); i++; }
        else if (!strcmp(a, "--seed")) { seed = strtoull(v, NULL, 10); i++; }
        else { fprintf(stderr, "unknown argument %s\n", a); return 2; }
    }
    if (!port || nkeys <= 0 || !vfile || conns < nthreads) { fprintf(stderr, "usage: see the comment at the top of tierload.c\n"); return 2; }
    FILE *f = fopen(vfile, "rb");
    if (!f) { perror(vfile); return 2; }
    struct stat st; fstat(fileno(f), &st);
    npages = st.st_size / PAGE;
    values = malloc((size_t)npages * PAGE);
    if (fread(values, PAGE, npages, f) != (size_t)npages) { perror("read values"); return 2; }
    fclose(f);

    /* Zipf CDF and the rank -> key permutation, both from the seed only. */
    cdf = malloc(sizeof(double) * nkeys);
    double sum = 0;
    for (int r = 0; r < nkeys; r++) { sum += 1.0 / pow(r + 1, zipf_s); cdf[r] = sum; }
    for (int r = 0; r < nkeys; r++) cdf[r] /= sum;
    rank_key = malloc(sizeof(int) * nkeys);
    for (int r = 0; r < nkeys; r++) rank_key[r] = r;
    uint64_t ps = seed ^ 0x5DEECE66Dull;
    for (int r = nkeys - 1; r > 0; r--) { int j = xr(&ps) % (uint64_t)(r + 1); int x = rank_key[r]; rank_key[r] = rank_key[j]; rank_key[j] = x; }

    thr_t *th = calloc(nthreads, sizeof *th);
    pthread_t *pt = calloc(nthreads, sizeof *pt);
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

    thr_t tot = {0};
    for (int i = 0; i < nthreads; i++) {
        tot.gets += th[i].gets; tot.puts += th[i].puts; tot.failed += th[i].failed; tot.misses += th[i].misses;
        tot.bad_status += th[i].bad_status; tot.closed += th[i].closed;
        merge(&tot.all, &th[i].all); merge(&tot.get, &th[i].get); merge(&tot.put, &th[i].put);
        if (!tot.first_error[0] && th[i].first_error[0]) memcpy(tot.first_error, th[i].first_error, sizeof tot.first_error);
    }
    qsort(tot.all.lat, tot.all.n, 4, cmp_u32);
    qsort(tot.get.lat, tot.get.n, 4, cmp_u32);
    qsort(tot.put.lat, tot.put.n, 4, cmp_u32);
    uint64_t req = tot.gets + tot.puts;
    for (char *p = tot.first_error; *p; p++) if (*p == '"' || *p == '\\' || (unsigned char)*p < 32) *p = '?';
    printf("{\"proto\": \"%s\", \"mode\": \"%s\", \"seconds\": %.3f, \"conns\": %d, \"threads\": %d, \"keys\": %d, "
           "\"zipf\": %.3f, \"put_ratio\": %.3f, \"requests\": %llu, \"gets\": %llu, \"puts\": %llu, "
           "\"failed\": %llu, \"misses\": %llu, \"bad_status\": %llu, \"closed\": %llu, \"req_s\": %.1f, "
           "\"p50_us\": %.0f, \"p99_us\": %.0f, \"p999_us\": %.0f, \"max_us\": %.0f, "
           "\"get_p50_us\": %.0f, \"get_p99_us\": %.0f, \"put_p50_us\": %.0f, \"put_p99_us\": %.0f, \"first_error\": \"%s\"}\n",
           proto == HTTP ? "http" : "memcache", fill_mode ? "fill" : small_mode ? "small" : load_mode ? "load" : "run", el, conns, nthreads, nkeys, zipf_s, put_ratio,
           (unsigned long long)req, (unsigned long long)tot.gets, (unsigned long long)tot.puts,
           (unsigned long long)tot.failed, (unsigned long long)tot.misses, (unsigned long long)tot.bad_status,
           (unsigned long long)tot.closed, req / el,
           pctl(&tot.all, 0.5), pctl(&tot.all, 0.99), pctl(&tot.all, 0.999), pctl(&tot.all, 1.0),
           pctl(&tot.get, 0.5), pctl(&tot.get, 0.99), pctl(&tot.put, 0.5), pctl(&tot.put, 0.99), tot.first_error);
    return 0;
}
