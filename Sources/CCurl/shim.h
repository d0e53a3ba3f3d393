// Typed wrappers for libcurl's variadic calls, which Swift cannot call directly.
#ifndef GRA_CCURL_SHIM_H
#define GRA_CCURL_SHIM_H
#include <curl/curl.h>

static inline CURLcode gra_easy_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode gra_easy_setopt_off(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode gra_easy_setopt_str(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode gra_easy_setopt_ptr(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode gra_easy_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode gra_easy_setopt_write(CURL *h, CURLoption o, size_t (*f)(char *, size_t, size_t, void *)) { return curl_easy_setopt(h, o, f); }
static inline CURLcode gra_easy_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode gra_easy_getinfo_double(CURL *h, CURLINFO i, double *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode gra_easy_getinfo_ptr(CURL *h, CURLINFO i, void **v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode gra_easy_getinfo_off(CURL *h, CURLINFO i, curl_off_t *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLMcode gra_multi_setopt_long(CURLM *m, CURLMoption o, long v) { return curl_multi_setopt(m, o, v); }

// The socket interface (curl_multi_socket_action) driven by epoll.
typedef int (*gra_socket_cb)(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp);
typedef int (*gra_timer_cb)(CURLM *multi, long timeout_ms, void *userp);
static inline CURLMcode gra_multi_setopt_socketfunction(CURLM *m, gra_socket_cb f) { return curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, f); }
static inline CURLMcode gra_multi_setopt_timerfunction(CURLM *m, gra_timer_cb f) { return curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, f); }
static inline CURLMcode gra_multi_setopt_ptr(CURLM *m, CURLMoption o, void *p) { return curl_multi_setopt(m, o, p); }

// epoll_event is packed on x86_64: wrap it so Swift never touches its layout.
#ifdef __linux__
#include <sys/epoll.h>
#include <sys/eventfd.h>
static inline int gra_epoll_ctl(int epfd, int op, int fd, unsigned events) {
    struct epoll_event ev;
    ev.events = events;
    ev.data.u64 = 0;
    ev.data.fd = fd;
    return epoll_ctl(epfd, op, fd, &ev);
}
/* Waits like epoll_wait and writes the ready descriptors and their events to two arrays. */
static inline int gra_epoll_wait(int epfd, int *fds, unsigned *events, int max, int timeout_ms) {
    struct epoll_event evs[256];
    if (max > 256) max = 256;
    int n = epoll_wait(epfd, evs, max, timeout_ms);
    for (int i = 0; i < n; i++) { fds[i] = evs[i].data.fd; events[i] = evs[i].events; }
    return n;
}
#endif

// glibc's allocator: keep freed memory instead of trimming and re-mapping it all the time
// (libcurl and the batch buffers allocate and free large blocks per request). Measured on
// gra-map: ~20% less CPU per request.
#ifdef __GLIBC__
#include <malloc.h>
static inline void gra_tune_allocator(void) {
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
}
#else
static inline void gra_tune_allocator(void) {}
#endif

// CURLMsg's payload is a union; Swift cannot read it portably.
static inline CURLcode gra_msg_result(CURLMsg *m) { return m->data.result; }

#endif
