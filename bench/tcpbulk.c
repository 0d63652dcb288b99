/* A bulk TCP sender and receiver for bench/network.sh: the same static binary on the host side
 * and inside the containers (their roots have no python3), so neither end of a transfer is
 * an interpreter.
 *
 *   tcpbulk sink PORT [N]            listen on 0.0.0.0:PORT, print "ready", then for each of N
 *                                    connections (0: forever) read until EOF into a 1 MiB buffer
 *                                    and answer with the byte count and the user and system
 *                                    CPU seconds that connection took it.
 *   tcpbulk send ADDRESS PORT BYTES  connect, write BYTES from a 1 MiB buffer, shut down the
 *                                    sending side, wait for the sink's count; print one JSON line:
 *                                    bytes, seconds (connect to the count received), the
 *                                    sender's and the sink's user and system CPU seconds.
 *
 * Plain read(2)/write(2), blocking, default socket buffers: what an ordinary program does.
 * Exit status 1 on any error or a count that differs from BYTES.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF (1 << 20)

static char buf[BUF];

static void die(const char *what) {
    fprintf(stderr, "tcpbulk: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void cpu(double *user, double *sys) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *user = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
    *sys = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static int sink(int port, long n) {
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (s < 0) die("socket");
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    if (listen(s, 16) < 0) die("listen");
    printf("ready\n");
    fflush(stdout);
    for (long i = 0; n == 0 || i < n; i++) {
        int c = accept(s, NULL, NULL);
        if (c < 0) die("accept");
        double u0, s0;
        cpu(&u0, &s0);
        unsigned long long total = 0;
        for (;;) {
            ssize_t r = read(c, buf, BUF);
            if (r < 0) {
                if (errno == EINTR) continue;
                die("read");
            }
            if (r == 0) break;
            total += r;
        }
        double u1, s1;
        cpu(&u1, &s1);
        char line[96];
        int len = snprintf(line, sizeof line, "%llu %.6f %.6f\n", total, u1 - u0, s1 - s0);
        if (write(c, line, len) != len) die("write count");
        close(c);
    }
    return 0;
}

static int send_bytes(const char *addr, int port, unsigned long long bytes) {
    memset(buf, 'x', BUF);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, addr, &a.sin_addr) != 1) {
        fprintf(stderr, "tcpbulk: not an IPv4 address: %s\n", addr);
        return 1;
    }
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) die("socket");
    double t0 = now();
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    unsigned long long left = bytes;
    while (left) {
        size_t want = left < BUF ? left : BUF;
        ssize_t w = write(s, buf, want);
        if (w < 0) {
            if (errno == EINTR) continue;
            die("write");
        }
        left -= w;
    }
    if (shutdown(s, SHUT_WR) < 0) die("shutdown");
    char line[64];
    size_t got = 0;
    for (;;) {
        ssize_t r = read(s, line + got, sizeof line - 1 - got);
        if (r < 0) {
            if (errno == EINTR) continue;
            die("read count");
        }
        if (r == 0) break;
        got += r;
    }
    double t1 = now();
    line[got] = 0;
    close(s);
    unsigned long long counted = 0;
    double su = -1, ss = -1, u, sy;
    sscanf(line, "%llu %lf %lf", &counted, &su, &ss);
    cpu(&u, &sy);
    printf("{\"bytes\": %llu, \"counted\": %llu, \"seconds\": %.6f, \"user\": %.6f, \"sys\": %.6f, "
           "\"sink_user\": %.6f, \"sink_sys\": %.6f}\n",
           bytes, counted, t1 - t0, u, sy, su, ss);
    if (counted != bytes) {
        fprintf(stderr, "tcpbulk: sent %llu bytes, the sink counted %llu\n", bytes, counted);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "sink") == 0)
        return sink(atoi(argv[2]), argc > 3 ? atol(argv[3]) : 0);
    if (argc == 5 && strcmp(argv[1], "send") == 0)
        return send_bytes(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 10));
    fprintf(stderr, "usage: tcpbulk sink PORT [N] | tcpbulk send ADDRESS PORT BYTES\n");
    return 2;
}
