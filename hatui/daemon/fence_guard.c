/* hatui's fencing guard as a small native program: the same state machine and pipe protocol as
 * the Python guard in fence.py (read that docstring first), at well under 1 MB resident instead
 * of a second Python interpreter (13.5 MB).
 *
 * Built on first use by hatui/daemon/fence_native.py with the system C compiler; when none is
 * there, the daemon runs the Python guard instead. It needs nothing but libc.
 *
 * What it does not do itself: releasing the leader key in etcd after the daemon died (HTTP, maybe
 * TLS and authentication). For that one rare moment it runs the Python helper
 * (`python -m hatui.daemon.fence --release`), after PostgreSQL is already stopped.
 *
 *   argv: hatui.daemon.fence --daemon-pid PID [--log-file FILE] --python EXE
 *   stdin: JSON lines {"op": "config"|"beat"|"disarm"|"exit", ...}, EOF = the daemon is gone
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WDIOC_SETTIMEOUT 0xC0045706
#define LINE_MAX_LEN 65536

static long daemon_pid;
static const char *log_file;
static const char *python_exe;

enum state { IDLE, ARMED, FIRED };
static enum state state = IDLE;
static double deadline = INFINITY;
static long ttl;
static long long lease;        /* 0: none */
static double safety_margin = 5;
static char data_dir[PATH_MAX];
static char wd_device[PATH_MAX]; /* "": no watchdog */
static int watchdog_fd = -1;
static int exit_requested;
static char *config_line;        /* the raw config message, handed to the release helper */
static volatile sig_atomic_t got_sigterm;

/* ------------------------------------------------------------------------------ logging */

static void logmsg(const char *level, const char *fmt, ...) {
    char line[4096];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    int n = (int)strftime(line, sizeof line, "%Y-%m-%d %H:%M:%S", &tm);
    n += snprintf(line + n, sizeof line - n, ",%03ld %s: ", (long)(tv.tv_usec / 1000), level);
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    /* Opened per line: a rotated daemon log is followed, and a line is one write (O_APPEND). */
    int fd = log_file ? open(log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600) : 2;
    if (fd < 0)
        fd = 2;
    ssize_t ignored = write(fd, line, n);
    (void)ignored;
    if (fd != 2)
        close(fd);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* Python's time.monotonic(): shared by every process */
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void nap(double seconds) {
    struct timespec ts = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
}

/* ---------------------------------------------------------- JSON (one object per line) */

static const char *ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    return p;
}

static const char *skip_string(const char *p) { /* p at the opening quote; returns past the closing one */
    for (p++; *p && *p != '"'; p++)
        if (*p == '\\' && p[1])
            p++;
    return *p ? p + 1 : p;
}

static const char *skip_value(const char *p) {
    p = ws(p);
    if (*p == '"')
        return skip_string(p);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (*p) {
            if (*p == '"') {
                p = skip_string(p);
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if (*p == '}' || *p == ']') {
                if (--depth == 0)
                    return p + 1;
            }
            p++;
        }
        return p;
    }
    while (*p && *p != ',' && *p != '}' && *p != ']')
        p++;
    return p;
}

/* The value of a top-level key of the object at p, or NULL. */
static const char *json_find(const char *p, const char *key) {
    p = ws(p);
    if (*p != '{')
        return NULL;
    p++;
    size_t klen = strlen(key);
    for (;;) {
        p = ws(p);
        if (*p != '"')
            return NULL;
        const char *k = p + 1;
        const char *end = skip_string(p);
        int match = (size_t)(end - 1 - k) == klen && strncmp(k, key, klen) == 0;
        p = ws(end);
        if (*p != ':')
            return NULL;
        p = ws(p + 1);
        if (match)
            return p;
        p = ws(skip_value(p));
        if (*p != ',')
            return NULL;
        p++;
    }
}

static int put_utf8(char *out, size_t *n, size_t size, unsigned long cp) {
    char buf[4];
    int len;
    if (cp < 0x80) { buf[0] = (char)cp; len = 1; }
    else if (cp < 0x800) { buf[0] = (char)(0xC0 | (cp >> 6)); buf[1] = (char)(0x80 | (cp & 0x3F)); len = 2; }
    else if (cp < 0x10000) {
        buf[0] = (char)(0xE0 | (cp >> 12)); buf[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[2] = (char)(0x80 | (cp & 0x3F)); len = 3;
    } else {
        buf[0] = (char)(0xF0 | (cp >> 18)); buf[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        buf[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); buf[3] = (char)(0x80 | (cp & 0x3F)); len = 4;
    }
    if (*n + len >= size)
        return 0;
    memcpy(out + *n, buf, len);
    *n += len;
    return 1;
}

/* A JSON string value into out (UTF-8); 0 when it is not a string or does not fit. */
static int json_string(const char *p, char *out, size_t size) {
    if (!p || *p != '"')
        return 0;
    size_t n = 0;
    for (p++; *p && *p != '"'; p++) {
        unsigned long cp = (unsigned char)*p;
        if (*p == '\\') {
            p++;
            switch (*p) {
            case 'n': cp = '\n'; break;
            case 't': cp = '\t'; break;
            case 'r': cp = '\r'; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'u': {
                char hex[5] = {0};
                if (strlen(p + 1) < 4)
                    return 0;
                memcpy(hex, p + 1, 4);
                cp = strtoul(hex, NULL, 16);
                p += 4;
                if (cp >= 0xD800 && cp < 0xDC00 && p[1] == '\\' && p[2] == 'u' && strlen(p + 3) >= 4) {
                    memcpy(hex, p + 3, 4);
                    unsigned long low = strtoul(hex, NULL, 16);
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    p += 6;
                }
                break;
            }
            default: cp = (unsigned char)*p; /* \" \\ \/ */
            }
            if (!put_utf8(out, &n, size, cp))
                return 0;
            continue;
        }
        if (n + 1 >= size)
            return 0;
        out[n++] = *p;
    }
    out[n] = 0;
    return *p == '"';
}

static int json_number(const char *p, double *out) {
    if (!p || !(*p == '-' || (*p >= '0' && *p <= '9')))
        return 0;
    *out = strtod(p, NULL);
    return 1;
}

/* ------------------------------------------------------------------------------ /proc */

/* The one-letter process state from /proc/PID/stat (R, S, D, T, t, Z, ...); 0: no such process. */
static char proc_state(long pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    char *paren = strrchr(buf, ')');
    if (!paren)
        return 0;
    return *ws(paren + 1);
}

static int proc_state_alive(long pid) {
    char st = proc_state(pid);
    return st && st != 'Z' && st != 'X';
}

static int same_dir(long pid, const char *dir) {
    char path[64], cwd[PATH_MAX], want[PATH_MAX];
    snprintf(path, sizeof path, "/proc/%ld/cwd", pid);
    ssize_t n = readlink(path, cwd, sizeof cwd - 1);
    if (n < 0)
        return errno == EACCES || errno == EPERM ? 2 : 0;
    cwd[n] = 0;
    if (!realpath(dir, want))
        snprintf(want, sizeof want, "%s", dir);
    return strcmp(cwd, want) == 0;
}

static int is_postmaster_of(long pid, const char *dir) {
    char path[64], comm[64] = {0};
    snprintf(path, sizeof path, "/proc/%ld/comm", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, comm, sizeof comm - 1);
    close(fd);
    if (n <= 0)
        return 0;
    comm[strcspn(comm, "\n")] = 0;
    if (strcmp(comm, "postgres") != 0 && strcmp(comm, "postmaster") != 0)
        return 0;
    if (!proc_state_alive(pid))
        return 0;
    return same_dir(pid, dir) != 0; /* unreadable cwd (permissions): trust the pid file */
}

static long postgres_pid(void) {
    if (!data_dir[0])
        return 0;
    char path[PATH_MAX + 32], buf[64] = {0};
    snprintf(path, sizeof path, "%s/postmaster.pid", data_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    long pid = strtol(buf, NULL, 10);
    return pid > 0 && is_postmaster_of(pid, data_dir) ? pid : 0;
}

/* Every live process working in the data dir (a backend that outlived its postmaster). */
static int data_dir_processes(long *pids, int max) {
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    int count = 0;
    struct dirent *e;
    long self = getpid();
    while ((e = readdir(d)) && count < max) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0 || pid == self)
            continue;
        if (same_dir(pid, data_dir) == 1 && proc_state_alive(pid))
            pids[count++] = pid;
    }
    closedir(d);
    return count;
}

static int gone_within(long pid, double seconds) {
    double until = now() + seconds;
    long others[16];
    while (now() < until) {
        if (!is_postmaster_of(pid, data_dir) && data_dir_processes(others, 16) == 0)
            return 1;
        nap(0.05);
    }
    return 0;
}

/* Fast shutdown for up to fast_for seconds, then immediate, then SIGKILL (see fence.py). */
static int stop_postgres(double fast_for) {
    long pid = postgres_pid();
    if (!pid) {
        logmsg("INFO", "fencing guard: PostgreSQL is not running");
        return 1;
    }
    struct { int sig; double seconds; const char *mode; } steps[] = {
        {SIGINT, fast_for, "fast"}, {SIGQUIT, 10.0, "immediate"}};
    for (int i = 0; i < 2; i++) {
        if (steps[i].seconds <= 0)
            continue;
        if (kill((pid_t)pid, steps[i].sig) != 0) { /* first, then the log line: every ms may be a write */
            if (errno == ESRCH)
                return gone_within(pid, 2.0);
            logmsg("ERROR", "fencing guard cannot signal the postmaster (pid %ld): [Errno %d] %s", pid, errno,
                   strerror(errno));
            return 0;
        }
        logmsg("WARNING", "fencing guard: %s shutdown of PostgreSQL (postmaster pid %ld)", steps[i].mode, pid);
        if (gone_within(pid, steps[i].seconds))
            return 1;
    }
    logmsg("ERROR", "fencing guard: the postmaster (pid %ld) ignored the immediate shutdown; killing it", pid);
    kill((pid_t)pid, SIGKILL);
    long others[256];
    int n = data_dir_processes(others, 256);
    for (int i = 0; i < n; i++)
        kill((pid_t)others[i], SIGKILL);
    return gone_within(pid, 2.0);
}

/* ---------------------------------------------------------------------------- watchdog */

static double margin(long t) {
    /* A margin that eats the whole TTL would fire on every beat; Patroni's -1 means ttl/2. */
    return safety_margin < 0 || safety_margin >= t ? t / 2.0 : safety_margin;
}

static double hard_deadline(void) { return deadline + margin(ttl) / 2; }

static void watchdog_feed(void) {
    if (!wd_device[0])
        return;
    if (watchdog_fd < 0) {
        watchdog_fd = open(wd_device, O_WRONLY | O_CLOEXEC);
        if (watchdog_fd < 0) {
            logmsg("ERROR", "fencing guard cannot open watchdog %s: [Errno %d] %s", wd_device, errno,
                   strerror(errno));
            wd_device[0] = 0;
            return;
        }
        /* Between the guard's deadline and the lease expiry (see fence.py). */
        int timeout = (int)(ttl - margin(ttl) / 2);
        if (timeout < 1)
            timeout = 1;
        if (ioctl(watchdog_fd, WDIOC_SETTIMEOUT, &timeout) != 0)
            logmsg("WARNING", "fencing guard could not set the watchdog timeout to %ds: [Errno %d] %s", timeout,
                   errno, strerror(errno));
        logmsg("INFO", "fencing guard: watchdog %s activated (timeout %ds)", wd_device, timeout);
    }
    if (write(watchdog_fd, "1", 1) != 1)
        logmsg("ERROR", "fencing guard could not feed the watchdog: [Errno %d] %s", errno, strerror(errno));
}

static void watchdog_close(void) {
    if (watchdog_fd < 0)
        return;
    if (write(watchdog_fd, "V", 1) == 1 && close(watchdog_fd) == 0)
        logmsg("INFO", "fencing guard: watchdog disabled");
    else
        logmsg("ERROR", "fencing guard could not disable the watchdog: [Errno %d] %s", errno, strerror(errno));
    watchdog_fd = -1;
}

/* ------------------------------------------------------------------------------ etcd */

/* The leader key and lease of a dead (or frozen) daemon, through the Python helper (HTTP, TLS,
 * auth). It is started as soon as the guard fires, before PostgreSQL is even down, and gets its
 * config line at once: its interpreter starts and imports the etcd client (a second or more on a
 * loaded machine) while PostgreSQL shuts down. Only then does the guard send it the state line
 * that makes it act, or close the pipe without one (nothing to release). */
static pid_t helper_pid = -1;
static int helper_fd = -1;
static pid_t helper_dismissed = -1; /* a helper sent away while armed: reaped without waiting */
/* Seconds before the deadline at which the helper is started when no beat came: a daemon that
 * missed its refreshes for ttl - margin - PREWARM seconds is probably stalled, and a ready helper
 * releases the key of a frozen one a second or more sooner. A beat that comes after all sends it
 * away again. Healthy daemons beat every loop_wait and never get near this point. */
#define PREWARM 3.0
static int prewarmed; /* tried since the last beat that moved the deadline away */

static void helper_start(void) {
    if (helper_pid > 0 || !config_line || !python_exe)
        return;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return;
    pid_t child = fork();
    if (child == 0) {
        dup2(fds[0], 0);
        char pidtext[32];
        snprintf(pidtext, sizeof pidtext, "%ld", daemon_pid);
        if (log_file)
            execl(python_exe, python_exe, "-m", "hatui.daemon.fence", "--release", "--daemon-pid", pidtext,
                  "--log-file", log_file, (char *)NULL);
        else
            execl(python_exe, python_exe, "-m", "hatui.daemon.fence", "--release", "--daemon-pid", pidtext,
                  (char *)NULL);
        _exit(127);
    }
    close(fds[0]);
    if (child < 0) {
        close(fds[1]);
        logmsg("ERROR", "fencing guard could not start the leader key release: [Errno %d] %s", errno,
               strerror(errno));
        return;
    }
    helper_pid = child;
    helper_fd = fds[1];
    ssize_t ignored = write(helper_fd, config_line, strlen(config_line));
    ignored = write(helper_fd, "\n", 1);
    (void)ignored;
}

/* Send the state line (release) or nothing (dismiss), then wait for the helper to finish. */
static void helper_finish(int release, int frozen) {
    if (helper_pid <= 0)
        return;
    if (release) {
        char state_line[160];
        snprintf(state_line, sizeof state_line,
                 "{\"op\": \"release\", \"lease\": %lld, \"ttl\": %ld, \"frozen\": %s}\n", lease, ttl,
                 frozen ? "true" : "false");
        ssize_t ignored = write(helper_fd, state_line, strlen(state_line));
        (void)ignored;
    }
    close(helper_fd);
    int status;
    while (waitpid(helper_pid, &status, 0) < 0 && errno == EINTR)
        ;
    helper_pid = helper_fd = -1;
}

/* A beat moved the deadline away: let a prewarmed helper go without blocking the guard. */
static void helper_dismiss(void) {
    if (helper_pid <= 0)
        return;
    if (helper_dismissed > 0) {
        int status;
        while (waitpid(helper_dismissed, &status, 0) < 0 && errno == EINTR)
            ;
    }
    close(helper_fd);
    helper_dismissed = helper_pid;
    helper_pid = helper_fd = -1;
}

static void helper_reap(void) {
    int status;
    if (helper_dismissed > 0 && waitpid(helper_dismissed, &status, WNOHANG) != 0)
        helper_dismissed = -1;
}

/* frozen: the daemon is stopped, not dead; the helper gives up once it runs again. */
static void release_leader(int frozen) {
    helper_start(); /* not started yet (the guard fired before this daemon's config?): now */
    helper_finish(1, frozen);
}

/* -------------------------------------------------------------------- the state machine */

static void handle(const char *line) {
    char op[32];
    double v;
    if (!json_string(json_find(line, "op"), op, sizeof op))
        return;
    if (strcmp(op, "config") == 0) {
        free(config_line);
        config_line = strdup(line);
        if (json_number(json_find(line, "safety_margin"), &v))
            safety_margin = v;
        if (!json_string(json_find(line, "data_dir"), data_dir, sizeof data_dir))
            data_dir[0] = 0;
        const char *wd = json_find(line, "watchdog");
        if (!wd || !json_string(json_find(wd, "device"), wd_device, sizeof wd_device))
            wd_device[0] = 0;
    } else if (strcmp(op, "beat") == 0) {
        double t;
        if (!json_number(json_find(line, "t"), &t))
            return;
        ttl = json_number(json_find(line, "ttl"), &v) ? (long)v : 0;
        /* An etcd lease ID is a 64-bit integer: read it as one (a double keeps only 53 bits). */
        const char *l = json_find(line, "lease");
        if (l && *l >= '0' && *l <= '9' && strtoll(l, NULL, 10) != 0)
            lease = strtoll(l, NULL, 10);
        deadline = t + ttl - margin(ttl);
        if (deadline - now() > 2 * PREWARM) {
            helper_dismiss();
            prewarmed = 0;
        }
        if (state == FIRED)
            logmsg("INFO", "fencing guard: the daemon (pid %ld) refreshed the lease again; re-armed", daemon_pid);
        state = ARMED;
        watchdog_feed();
    } else if (strcmp(op, "disarm") == 0) {
        helper_dismiss();
        prewarmed = 0;
        state = IDLE;
        deadline = INFINITY;
        watchdog_close();
    } else if (strcmp(op, "exit") == 0) {
        exit_requested = 1;
    }
}

static void check_deadline(void) {
    if (state != ARMED || now() < deadline)
        return;
    double late = now() - deadline;
    double left = hard_deadline() - now();
    helper_start(); /* warms up while PostgreSQL stops, in case the key is to be released */
    int stopped = stop_postgres(left > 0 ? left : 0); /* past the hard deadline: no time for a fast one */
    logmsg("WARNING", "fencing guard: no lease refresh from the daemon (pid %ld) for %gs (ttl %ld - safety_margin "
           "%g) while it is the leader: PostgreSQL must not take writes once another member may be promoted",
           daemon_pid, ttl - margin(ttl), ttl, margin(ttl));
    if (late > 1)
        logmsg("WARNING", "fencing guard: it acted %.1fs after its deadline (was this machine or the guard frozen?)",
               late);
    state = FIRED;
    deadline = INFINITY;
    if (stopped) {
        logmsg("WARNING", "fencing guard stopped PostgreSQL: the daemon (pid %ld) stalled while leader", daemon_pid);
        watchdog_close();
        /* A frozen daemon (SIGSTOP) gives its key away now rather than when the lease runs out
         * (fence.py, Guard.daemon_frozen): only when nothing it wrote before is still unread. */
        struct pollfd pending = {0, POLLIN, 0};
        char st = proc_state(daemon_pid);
        if (poll(&pending, 1, 0) == 0 && (st == 'T' || st == 't')) {
            logmsg("WARNING", "fencing guard: the daemon (pid %ld) is frozen: releasing its leader key now, not when "
                   "its lease runs out", daemon_pid);
            release_leader(1);
        } else
            logmsg("INFO", "fencing guard: the daemon (pid %ld) is running (slow, not frozen): it decides about "
                   "its lease itself", daemon_pid);
    }
    helper_finish(0, 0); /* not released: the helper exits without touching etcd */
}

static void daemon_gone(void) {
    if (exit_requested) {
        watchdog_close();
        return;
    }
    if (state == IDLE) {
        logmsg("INFO", "fencing guard: the daemon (pid %ld) exited while not leader; nothing to do", daemon_pid);
        return;
    }
    double left = hard_deadline() - now();
    double fast = left < 10.0 ? left : 10.0;
    if (state == ARMED) {
        logmsg("WARNING", "fencing guard: the daemon (pid %ld) died while leader; stopping PostgreSQL", daemon_pid);
        helper_start();
        if (!stop_postgres(fast)) {
            helper_finish(0, 0);
            logmsg("ERROR", "fencing guard could not stop PostgreSQL; the leader key is left to expire");
            return;
        }
        logmsg("WARNING", "fencing guard stopped PostgreSQL: the daemon died (pid %ld) while leader", daemon_pid);
    } else if (!postgres_pid()) {
        logmsg("WARNING", "fencing guard: the daemon (pid %ld) died after a stall; PostgreSQL is already stopped",
               daemon_pid);
    } else if (!stop_postgres(fast)) {
        helper_finish(0, 0);
        return; /* fired, then someone started PostgreSQL again (the daemon, after SIGCONT) */
    }
    watchdog_close();
    release_leader(0);
}

static void on_sigterm(int sig) {
    (void)sig;
    got_sigterm = 1;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--daemon-pid") == 0 && i + 1 < argc)
            daemon_pid = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--log-file") == 0 && i + 1 < argc)
            log_file = argv[++i];
        else if (strcmp(argv[i], "--python") == 0 && i + 1 < argc)
            python_exe = argv[++i];
    }
    if (daemon_pid <= 0) {
        fprintf(stderr, "usage: %s --daemon-pid PID [--log-file FILE] [--python EXE]\n", argv[0]);
        return 2;
    }
    /* The guard outlives the daemon on purpose: terminal and hang-up signals must not stop it. */
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {0};
    sa.sa_handler = on_sigterm;
    sigaction(SIGTERM, &sa, NULL);

    static char buffer[LINE_MAX_LEN + 1];
    size_t used = 0;
    for (;;) {
        int timeout_ms = -1;
        if (state == ARMED) {
            double left = deadline - now();
            if (!prewarmed && python_exe && left > PREWARM)
                left -= PREWARM; /* wake up in time to start the helper */
            timeout_ms = left <= 0 ? 0 : (int)ceil(left * 1000);
        }
        struct pollfd pfd = {0, POLLIN, 0};
        int ready = poll(&pfd, 1, timeout_ms);
        if (got_sigterm) {
            got_sigterm = 0;
            logmsg("INFO", "fencing guard: SIGTERM ignored; it exits with the daemon");
        }
        if (ready > 0) {
            ssize_t n = read(0, buffer + used, LINE_MAX_LEN - used);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                daemon_gone();
                return 0;
            }
            used += n;
            buffer[used] = 0;
            char *start = buffer, *nl;
            while ((nl = memchr(start, '\n', used - (start - buffer)))) {
                *nl = 0;
                handle(start);
                start = nl + 1;
            }
            used -= start - buffer;
            memmove(buffer, start, used);
            if (used == LINE_MAX_LEN) {
                logmsg("ERROR", "fencing guard: ignoring a malformed message");
                used = 0;
            }
        }
        helper_reap();
        if (state == ARMED && !prewarmed && python_exe && now() >= deadline - PREWARM) {
            prewarmed = 1;
            helper_start();
        }
        check_deadline();
    }
}
