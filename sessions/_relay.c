/* The logon gateway's byte relay, off the interpreter lock.

   After the gateway (sessions/gateway.py) has checked a Logon, its connection only
   carries bytes between the client and the QuickFIX acceptor on loopback. Relaying them
   in Python costs two lock hand-offs per read and per write (recv and send release the
   interpreter lock and must take it back), and under load a thread that gives the lock
   up waits for the busy threads (sequencer, market data) to let it have it again: every
   order, report and market-data message waited in that queue. This module relays on its
   own native thread (epoll), never touching a Python object: the gateway hands over the
   two sockets with add(), and asks backlog(), alive() and close() by the pair's id.

   The behaviour is the Python relay's (LogonGateway._read/_flush/_close_pair/_linger):
   bytes pass straight through when the other side takes them, else they wait in that
   side's buffer; a side whose peer holds more than HIGH_WATER unsent bytes is not read
   until the peer is below half of it; when one side ends (EOF or an error) it is closed
   and the other gets what is still buffered for it, is shut down for writing, and is
   closed once its peer closes or LINGER passes (so a last Logout is not lost to a
   reset). Every field of every pair is guarded by one mutex; the relay thread holds it
   while it handles a round of events, the module's functions for a few microseconds. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (64 * 1024)
#define READS_PER_EVENT 4
#define HIGH_WATER (8 * 1024 * 1024)
#define LINGER_NS 2000000000LL
#define SLOT_BITS 20
#define MAX_SLOTS (1 << SLOT_BITS)

struct pair;

typedef struct {
    struct pair *pair;
    int idx;            /* 0 client, 1 backend */
    int fd;             /* -1 once closed */
    char *out;          /* bytes waiting to be written to this side: out[off:len] */
    size_t off, len, cap;
    int closing;        /* its peer is gone: write what is left, then linger */
    int draining;       /* shut down for writing: discard input until EOF or the deadline */
    long long deadline;
    int paused;         /* not read: its peer holds more than HIGH_WATER unsent bytes */
    uint32_t events;    /* what epoll watches now */
} side_t;

typedef struct pair {
    long long id;
    side_t s[2];
} pair_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pair_t **slots = NULL;
static size_t nslots = 0;
static long long generation = 0;
static int epfd = -1;
static int started = 0;
static long long relayed[2] = {0, 0}; /* bytes to clients, to backends */

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static size_t pending(side_t *s) { return s->len - s->off; }

static void set_events(side_t *s) {
    if (s->fd < 0) return;
    uint32_t ev = 0;
    if (s->draining) ev = EPOLLIN;
    else {
        if (!s->paused && !s->closing) ev |= EPOLLIN;
        if (pending(s)) ev |= EPOLLOUT;
    }
    if (ev != s->events) {
        struct epoll_event e;
        memset(&e, 0, sizeof e);
        e.events = ev;
        e.data.ptr = s;
        epoll_ctl(epfd, EPOLL_CTL_MOD, s->fd, &e);
        s->events = ev;
    }
}

static void close_side(side_t *s) {
    if (s->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, s->fd, NULL);
        close(s->fd);
        s->fd = -1;
    }
    free(s->out);
    s->out = NULL;
    s->off = s->len = s->cap = 0;
}

static int append(side_t *s, const char *data, size_t n) {
    if (s->off && s->off == s->len) s->off = s->len = 0;
    if (s->len + n > s->cap) {
        if (s->off) { /* compact first */
            memmove(s->out, s->out + s->off, s->len - s->off);
            s->len -= s->off;
            s->off = 0;
        }
        if (s->len + n > s->cap) {
            size_t cap = s->cap ? s->cap : CHUNK;
            while (cap < s->len + n) cap *= 2;
            char *p = realloc(s->out, cap);
            if (p == NULL) return -1;
            s->out = p;
            s->cap = cap;
        }
    }
    memcpy(s->out + s->len, data, n);
    s->len += n;
    return 0;
}

static void flush(side_t *s);

static void linger(side_t *s) {
    if (shutdown(s->fd, SHUT_WR) != 0) {
        close_side(s);
        return;
    }
    s->draining = 1;
    s->paused = 0;
    s->deadline = now_ns() + LINGER_NS;
    set_events(s);
}

/* ``s`` ended (EOF, an error, or the gateway's close): close it; its peer gets what is
   buffered for it, then lingers. */
static void end_side(side_t *s) {
    side_t *peer = &s->pair->s[1 - s->idx];
    close_side(s);
    if (peer->fd >= 0 && !peer->closing && !peer->draining) {
        peer->closing = 1;
        flush(peer);
    }
}

static void flush(side_t *s) {
    if (s->fd < 0) return;
    while (pending(s)) {
        ssize_t w = send(s->fd, s->out + s->off, pending(s), MSG_NOSIGNAL);
        if (w > 0) {
            s->off += (size_t)w;
            relayed[s->idx] += w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        end_side(s);
        return;
    }
    if (!pending(s)) {
        s->off = s->len = 0;
        if (s->cap > 4 * CHUNK) { /* give back what a burst took */
            free(s->out);
            s->out = NULL;
            s->cap = 0;
        }
        if (s->closing && !s->draining) {
            linger(s);
            return;
        }
    }
    side_t *peer = &s->pair->s[1 - s->idx];
    if (peer->fd >= 0 && peer->paused && pending(s) < HIGH_WATER / 2) {
        peer->paused = 0;
        set_events(peer);
    }
    set_events(s);
}

static void readable(side_t *s, char *buf) {
    side_t *peer = &s->pair->s[1 - s->idx];
    for (int i = 0; i < READS_PER_EVENT && s->fd >= 0; i++) {
        ssize_t n = recv(s->fd, buf, CHUNK, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        }
        if (n <= 0) { /* EOF or an error */
            if (s->draining) close_side(s);
            else end_side(s);
            return;
        }
        if (s->draining || peer->fd < 0 || peer->closing || peer->draining) continue; /* nobody to give it to */
        size_t off = 0;
        if (!pending(peer)) { /* the usual case: straight through */
            while (off < (size_t)n) {
                ssize_t w = send(peer->fd, buf + off, (size_t)n - off, MSG_NOSIGNAL);
                if (w > 0) { off += (size_t)w; relayed[peer->idx] += w; continue; }
                if (w < 0 && errno == EINTR) continue;
                if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
                end_side(peer);
                return;
            }
        }
        if (off < (size_t)n) {
            if (append(peer, buf + off, (size_t)n - off) != 0) { /* out of memory: give up on the pair */
                end_side(peer);
                return;
            }
            set_events(peer);
            if (pending(peer) > HIGH_WATER && !s->paused) {
                s->paused = 1;
                set_events(s);
                return;
            }
        }
        if (n < CHUNK) return;
    }
}

static void free_pair_if_done(pair_t *p) {
    if (p->s[0].fd >= 0 || p->s[1].fd >= 0) return;
    size_t slot = (size_t)(p->id & (MAX_SLOTS - 1));
    if (slot < nslots && slots[slot] == p) slots[slot] = NULL;
    free(p);
}

static pair_t *find(long long id) {
    size_t slot = (size_t)(id & (MAX_SLOTS - 1));
    if (id < 0 || slot >= nslots || slots[slot] == NULL || slots[slot]->id != id) return NULL;
    return slots[slot];
}

static void *run(void *arg) {
    (void)arg;
    struct epoll_event evs[256];
    char *buf = malloc(CHUNK);
    long long next_sweep = 0;
    if (buf == NULL) return NULL;
    for (;;) {
        int n = epoll_wait(epfd, evs, 256, 100);
        pthread_mutex_lock(&lock);
        for (int i = 0; i < n; i++) {
            side_t *s = evs[i].data.ptr;
            uint32_t e = evs[i].events;
            /* a side closed earlier in this round is skipped; its pair is freed only at
               the sweep below, so ``s`` still points into live memory */
            if (s->fd < 0) continue;
            if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) flush(s);
            if (s->fd >= 0 && (e & (EPOLLIN | EPOLLERR | EPOLLHUP)) && (!s->paused || s->draining)) readable(s, buf);
        }
        long long t = now_ns();
        if (n > 0 || t >= next_sweep) {
            for (size_t k = 0; k < nslots; k++) {
                pair_t *p = slots[k];
                if (p == NULL) continue;
                for (int j = 0; j < 2; j++)
                    if (p->s[j].fd >= 0 && p->s[j].draining && p->s[j].deadline <= t) close_side(&p->s[j]);
                free_pair_if_done(p);
            }
            next_sweep = t + 100000000LL;
        }
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

/* Take the mutex without holding the interpreter lock while waiting for it. */
static void take(void) {
    if (pthread_mutex_trylock(&lock) == 0) return;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&lock);
    Py_END_ALLOW_THREADS
}

static int start_locked(void) {
    if (started) return 0;
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) return -1;
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&th, &attr, run, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        close(epfd);
        epfd = -1;
        errno = rc;
        return -1;
    }
    started = 1;
    return 0;
}

static int add_side(side_t *s, pair_t *p, int idx, int fd) {
    s->pair = p;
    s->idx = idx;
    s->fd = fd;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -1;
    struct epoll_event e;
    memset(&e, 0, sizeof e);
    e.events = EPOLLIN;
    e.data.ptr = s;
    s->events = EPOLLIN;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
}

static PyObject *relay_add(PyObject *self, PyObject *args) {
    int cfd, bfd;
    Py_buffer first;
    (void)self;
    if (!PyArg_ParseTuple(args, "iiy*", &cfd, &bfd, &first)) return NULL;
    take();
    if (start_locked() != 0) {
        pthread_mutex_unlock(&lock);
        PyBuffer_Release(&first);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    size_t slot = 0;
    while (slot < nslots && slots[slot] != NULL) slot++;
    if (slot == nslots) {
        size_t n = nslots ? nslots * 2 : 64;
        pair_t **grown = n <= MAX_SLOTS ? realloc(slots, n * sizeof *slots) : NULL;
        if (grown == NULL) {
            pthread_mutex_unlock(&lock);
            PyBuffer_Release(&first);
            return PyErr_NoMemory();
        }
        memset(grown + nslots, 0, (n - nslots) * sizeof *slots);
        slots = grown;
        nslots = n;
    }
    pair_t *p = calloc(1, sizeof *p);
    if (p == NULL) {
        pthread_mutex_unlock(&lock);
        PyBuffer_Release(&first);
        return PyErr_NoMemory();
    }
    p->s[0].fd = p->s[1].fd = -1;
    if (first.len > 0 && append(&p->s[1], first.buf, (size_t)first.len) != 0) {
        free(p);
        pthread_mutex_unlock(&lock);
        PyBuffer_Release(&first);
        return PyErr_NoMemory();
    }
    p->id = (++generation << SLOT_BITS) | (long long)slot;
    if (add_side(&p->s[0], p, 0, cfd) != 0 || add_side(&p->s[1], p, 1, bfd) != 0) {
        int err = errno;
        if (p->s[0].fd >= 0) epoll_ctl(epfd, EPOLL_CTL_DEL, cfd, NULL);
        if (p->s[1].fd >= 0) epoll_ctl(epfd, EPOLL_CTL_DEL, bfd, NULL);
        free(p->s[1].out);
        free(p); /* the caller still owns (and closes) both descriptors */
        pthread_mutex_unlock(&lock);
        PyBuffer_Release(&first);
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    slots[slot] = p;
    flush(&p->s[1]);
    long long id = p->id;
    pthread_mutex_unlock(&lock);
    PyBuffer_Release(&first);
    return PyLong_FromLongLong(id);
}

static PyObject *relay_backlog(PyObject *self, PyObject *arg) {
    (void)self;
    long long id = PyLong_AsLongLong(arg);
    if (id == -1 && PyErr_Occurred()) return NULL;
    take();
    pair_t *p = find(id);
    long long n = (p != NULL && p->s[0].fd >= 0) ? (long long)pending(&p->s[0]) : 0;
    pthread_mutex_unlock(&lock);
    return PyLong_FromLongLong(n);
}

static PyObject *relay_alive(PyObject *self, PyObject *arg) {
    (void)self;
    long long id = PyLong_AsLongLong(arg);
    if (id == -1 && PyErr_Occurred()) return NULL;
    take();
    pair_t *p = find(id);
    /* relaying: both sides open and neither winding down */
    int alive = p != NULL && p->s[0].fd >= 0 && p->s[1].fd >= 0 && !p->s[0].closing && !p->s[1].closing
                && !p->s[0].draining && !p->s[1].draining;
    pthread_mutex_unlock(&lock);
    return PyBool_FromLong(alive);
}

static PyObject *relay_close(PyObject *self, PyObject *arg) {
    (void)self;
    long long id = PyLong_AsLongLong(arg);
    if (id == -1 && PyErr_Occurred()) return NULL;
    take();
    pair_t *p = find(id);
    if (p != NULL && p->s[0].fd >= 0) end_side(&p->s[0]); /* the client; the backend winds down */
    pthread_mutex_unlock(&lock);
    Py_RETURN_NONE;
}

static PyObject *relay_stats(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    take();
    long long pairs = 0;
    for (size_t k = 0; k < nslots; k++) pairs += slots[k] != NULL;
    PyObject *d = Py_BuildValue("{s:L,s:L,s:L}", "pairs", pairs, "to_clients", relayed[0], "to_backends", relayed[1]);
    pthread_mutex_unlock(&lock);
    return d;
}

static PyMethodDef methods[] = {
    {"add", relay_add, METH_VARARGS,
     "add(client_fd, backend_fd, first) -> id: relay the two connected sockets (the module "
     "owns and closes them from now on), sending ``first`` to the backend first."},
    {"backlog", relay_backlog, METH_O, "backlog(id) -> bytes held for the client (0 once closed)."},
    {"alive", relay_alive, METH_O, "alive(id) -> both sides open and relaying."},
    {"close", relay_close, METH_O, "close(id): close the client; the backend gets what is left, then closes."},
    {"stats", relay_stats, METH_NOARGS, "stats() -> pairs held and bytes relayed each way."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "sessions._relay",
                                    "The logon gateway's byte relay on a native thread (see _relay.c).", -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__relay(void) { return PyModule_Create(&module); }
