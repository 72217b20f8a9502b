#include "so_system.h"
#if defined(__linux__)
#include <fcntl.h>
#include <unistd.h>

long long so_machine_idle_ns(void) {
    static long ticks_per_second = 0;
    if (ticks_per_second <= 0) {
        ticks_per_second = sysconf(_SC_CLK_TCK);
        if (ticks_per_second <= 0) return -1;
    }
    int fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 4) return -1;
    buf[n] = 0;
    /* "cpu  user nice system idle iowait ...": the fourth number */
    if (buf[0] != 'c' || buf[1] != 'p' || buf[2] != 'u' || buf[3] != ' ') return -1;
    const char *p = buf + 4;
    unsigned long long value = 0;
    for (int field = 0; field < 4; field++) {
        while (*p == ' ') p++;
        if (*p < '0' || *p > '9') return -1;
        value = 0;
        while (*p >= '0' && *p <= '9') { value = value * 10 + (unsigned long long)(*p - '0'); p++; }
    }
    return (long long)(value * (1000000000ULL / (unsigned long long)ticks_per_second));
}
#else
long long so_machine_idle_ns(void) { return -1; }
#endif
