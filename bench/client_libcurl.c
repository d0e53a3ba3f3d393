/* bench/client_libcurl.c — the floor: the same requests as gra-map from a plain C libcurl
 * multi loop (curl_multi_perform + curl_multi_poll, the usual way), so bench/client can show
 * what libcurl itself costs per request on this machine.
 *
 * usage: client_libcurl RECORDS OUTPUT BASE_URL MODEL CONCURRENCY
 * RECORDS holds lines like {"id":"r1","instruction":"..."} (bench/client writes them; no
 * escapes inside the values). OUTPUT gets {"id":"r1","reply":"..."} per record. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct job { char *id; char *body; char *resp; size_t len, cap; };

static size_t on_data(char *p, size_t s, size_t n, void *u) {
    struct job *j = u; size_t k = s * n;
    if (j->len + k + 1 > j->cap) { j->cap = (j->len + k + 1) * 2; j->resp = realloc(j->resp, j->cap); }
    memcpy(j->resp + j->len, p, k); j->len += k; j->resp[j->len] = 0;
    return k;
}

static char *field(const char *line, const char *name) {   /* "name": "value" → value */
    char key[64]; snprintf(key, sizeof key, "\"%s\":", name);
    const char *a = strstr(line, key); if (!a) return NULL; a += strlen(key);
    while (*a == ' ') a++;
    if (*a != '"') return NULL;
    a++;
    const char *b = a; while (*b && !(*b == '"' && b[-1] != '\\')) b++;
    return strndup(a, (size_t)(b - a));
}

int main(int argc, char **argv) {
    if (argc != 6) { fprintf(stderr, "usage: %s RECORDS OUTPUT BASE_URL MODEL CONCURRENCY\n", argv[0]); return 64; }
    FILE *in = fopen(argv[1], "r"), *out = fopen(argv[2], "w");
    if (!in || !out) { perror("open"); return 74; }
    char url[1024]; snprintf(url, sizeof url, "%s/chat/completions", argv[3]);
    const char *model = argv[4]; int inflight = atoi(argv[5]);

    size_t n = 0, cap = 1024; struct job *jobs = malloc(cap * sizeof *jobs);
    char *line = NULL; size_t lcap = 0;
    while (getline(&line, &lcap, in) > 0) {
        if (n == cap) { cap *= 2; jobs = realloc(jobs, cap * sizeof *jobs); }
        char *id = field(line, "id"), *ins = field(line, "instruction");
        if (!id || !ins) { fprintf(stderr, "bad record: %s", line); return 65; }
        size_t bl = strlen(ins) + strlen(model) + 96; char *body = malloc(bl);
        snprintf(body, bl, "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}", model, ins);
        jobs[n++] = (struct job){ id, body, NULL, 0, 0 }; free(ins);
    }

    curl_global_init(CURL_GLOBAL_ALL);
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)inflight * 2);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    size_t next = 0, done = 0; int failures = 0;
    CURL **free_handles = malloc((size_t)inflight * sizeof *free_handles); int nfree = 0;
    for (int i = 0; i < inflight; i++) free_handles[nfree++] = curl_easy_init();
    while (done < n) {
        while (nfree > 0 && next < n) {
            CURL *e = free_handles[--nfree]; struct job *j = &jobs[next++];
            curl_easy_setopt(e, CURLOPT_URL, url);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->body);
            curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
            curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
            curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
            curl_easy_setopt(e, CURLOPT_PRIVATE, j);
            curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
            curl_multi_add_handle(m, e);
        }
        int running; curl_multi_perform(m, &running);
        CURLMsg *msg; int q;
        while ((msg = curl_multi_info_read(m, &q))) {
            if (msg->msg != CURLMSG_DONE) continue;
            CURL *e = msg->easy_handle; struct job *j; long code = 0;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&j);
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
            char *reply = (msg->data.result == CURLE_OK && code == 200 && j->resp) ? field(j->resp, "content") : NULL;
            if (reply) fprintf(out, "{\"id\":\"%s\",\"reply\":\"%s\"}\n", j->id, reply); else failures++;
            free(reply); free(j->resp); j->resp = NULL; j->len = j->cap = 0;
            curl_multi_remove_handle(m, e); free_handles[nfree++] = e; done++;
        }
        /* Wait only when there is nothing to start: after finished transfers freed handles and
         * records remain, go straight back to add them. Polling there instead waits for the
         * transfers still running, and when the last round finished all of them (a fast server,
         * reused connections) there is nothing to wake the poll: it sleeps its whole timeout.
         * The same after the last transfer: nothing would wake it. */
        if (done == n || (nfree > 0 && next < n)) continue;
        curl_multi_poll(m, NULL, 0, 1000, NULL);
    }
    fclose(out);
    if (failures) { fprintf(stderr, "%d requests failed\n", failures); return 1; }
    return 0;
}
