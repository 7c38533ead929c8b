// The libcurl functions ShardRemote calls, defined here and forwarded to libcurl.so.4, which is
// loaded with dlopen on first use (see CShardCurl.h for why it is not linked).
//
// Each forwarder has libcurl's own signature, so the Swift code and the inline wrappers of
// CShardCurl.h call them as they would call libcurl. The forwarders look their target up with
// dlsym on libcurl's handle, which finds libcurl's definition (never these): a program that also
// loads libcurl itself is unaffected, and libShardStoreC.so exports none of these names.
#include "CShardCurl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char failure[512];
static int loaded = 0;

static CURLcode (*p_global_init)(long);
static CURL *(*p_easy_init)(void);
static void (*p_easy_cleanup)(CURL *);
static void (*p_easy_reset)(CURL *);
static CURLcode (*p_easy_perform)(CURL *);
static CURLcode (*p_easy_pause)(CURL *, int);
static const char *(*p_easy_strerror)(CURLcode);
static CURLcode (*p_easy_setopt)(CURL *, CURLoption, ...);
static CURLcode (*p_easy_getinfo)(CURL *, CURLINFO, ...);
static struct curl_slist *(*p_slist_append)(struct curl_slist *, const char *);
static void (*p_slist_free_all)(struct curl_slist *);
static CURLM *(*p_multi_init)(void);
static CURLMcode (*p_multi_cleanup)(CURLM *);
static CURLMcode (*p_multi_add_handle)(CURLM *, CURL *);
static CURLMcode (*p_multi_remove_handle)(CURLM *, CURL *);
static CURLMcode (*p_multi_perform)(CURLM *, int *);
static CURLMcode (*p_multi_poll)(CURLM *, struct curl_waitfd[], unsigned int, int, int *);
static CURLMsg *(*p_multi_info_read)(CURLM *, int *);
static CURLMcode (*p_multi_setopt)(CURLM *, CURLMoption, ...);
static curl_version_info_data *(*p_version_info)(CURLversion);

static void load(void) {
    // The Debian soname (libcurl4 and libcurl4-openssl-dev's runtime), then other names.
    static const char *const names[] = {"libcurl.so.4", "libcurl-gnutls.so.4", "libcurl.so"};
    void *library = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && library == NULL; i++) {
        library = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    }
    if (library == NULL) {
        const char *why = dlerror();
        snprintf(failure, sizeof failure, "%s", why != NULL ? why : "libcurl.so.4 not found");
        return;
    }
    const char *missing = NULL;
#define RESOLVE(pointer, name)                                      \
    do {                                                            \
        *(void **)(&pointer) = dlsym(library, name);                \
        if (pointer == NULL && missing == NULL) missing = name;     \
    } while (0)
    RESOLVE(p_global_init, "curl_global_init");
    RESOLVE(p_easy_init, "curl_easy_init");
    RESOLVE(p_easy_cleanup, "curl_easy_cleanup");
    RESOLVE(p_easy_reset, "curl_easy_reset");
    RESOLVE(p_easy_perform, "curl_easy_perform");
    RESOLVE(p_easy_pause, "curl_easy_pause");
    RESOLVE(p_easy_strerror, "curl_easy_strerror");
    RESOLVE(p_easy_setopt, "curl_easy_setopt");
    RESOLVE(p_easy_getinfo, "curl_easy_getinfo");
    RESOLVE(p_slist_append, "curl_slist_append");
    RESOLVE(p_slist_free_all, "curl_slist_free_all");
    RESOLVE(p_multi_init, "curl_multi_init");
    RESOLVE(p_multi_cleanup, "curl_multi_cleanup");
    RESOLVE(p_multi_add_handle, "curl_multi_add_handle");
    RESOLVE(p_multi_remove_handle, "curl_multi_remove_handle");
    RESOLVE(p_multi_perform, "curl_multi_perform");
    RESOLVE(p_multi_poll, "curl_multi_poll");
    RESOLVE(p_multi_info_read, "curl_multi_info_read");
    RESOLVE(p_multi_setopt, "curl_multi_setopt");
    RESOLVE(p_version_info, "curl_version_info");
#undef RESOLVE
    if (missing != NULL) {
        // curl_multi_poll came in 7.66 (2019): an older libcurl lacks it.
        snprintf(failure, sizeof failure, "the loaded libcurl has no %s (7.66 or newer is needed)", missing);
        return;
    }
    loaded = 1;
}

int shard_curl_load(void) {
    pthread_once(&once, load);
    return loaded ? 0 : -1;
}

const char *shard_curl_load_error(void) { return failure; }

CURLcode curl_global_init(long flags) {
    if (shard_curl_load() != 0) return CURLE_FAILED_INIT;
    return p_global_init(flags);
}

CURL *curl_easy_init(void) { return p_easy_init(); }

void curl_easy_cleanup(CURL *handle) { p_easy_cleanup(handle); }

void curl_easy_reset(CURL *handle) { p_easy_reset(handle); }

CURLcode curl_easy_perform(CURL *handle) { return p_easy_perform(handle); }

CURLcode curl_easy_pause(CURL *handle, int bitmask) { return p_easy_pause(handle, bitmask); }

const char *curl_easy_strerror(CURLcode code) { return p_easy_strerror(code); }

// An option's argument type follows from its number, as libcurl itself reads it: a long below
// CURLOPTTYPE_OBJECTPOINT, a pointer (object, string, list or function) below CURLOPTTYPE_OFF_T,
// a curl_off_t from there on (CURLOPTTYPE_BLOB, 40000 on, is a pointer too).
CURLcode curl_easy_setopt(CURL *handle, CURLoption option, ...) {
    va_list arguments;
    va_start(arguments, option);
    CURLcode result;
    if (option < CURLOPTTYPE_OBJECTPOINT) {
        long value = va_arg(arguments, long);
        result = p_easy_setopt(handle, option, value);
    } else if (option < CURLOPTTYPE_OFF_T || option >= CURLOPTTYPE_BLOB) {
        void *value = va_arg(arguments, void *);
        result = p_easy_setopt(handle, option, value);
    } else {
        curl_off_t value = va_arg(arguments, curl_off_t);
        result = p_easy_setopt(handle, option, value);
    }
    va_end(arguments);
    return result;
}

// Every curl_easy_getinfo argument is a pointer.
CURLcode curl_easy_getinfo(CURL *handle, CURLINFO info, ...) {
    va_list arguments;
    va_start(arguments, info);
    void *value = va_arg(arguments, void *);
    va_end(arguments);
    return p_easy_getinfo(handle, info, value);
}

struct curl_slist *curl_slist_append(struct curl_slist *list, const char *string) {
    return p_slist_append(list, string);
}

void curl_slist_free_all(struct curl_slist *list) { p_slist_free_all(list); }

CURLM *curl_multi_init(void) { return p_multi_init(); }

CURLMcode curl_multi_cleanup(CURLM *multi) { return p_multi_cleanup(multi); }

CURLMcode curl_multi_add_handle(CURLM *multi, CURL *handle) { return p_multi_add_handle(multi, handle); }

CURLMcode curl_multi_remove_handle(CURLM *multi, CURL *handle) { return p_multi_remove_handle(multi, handle); }

CURLMcode curl_multi_perform(CURLM *multi, int *running) { return p_multi_perform(multi, running); }

CURLMcode curl_multi_poll(CURLM *multi, struct curl_waitfd extra[], unsigned int count, int timeout, int *ready) {
    return p_multi_poll(multi, extra, count, timeout, ready);
}

CURLMsg *curl_multi_info_read(CURLM *multi, int *queued) { return p_multi_info_read(multi, queued); }

// The same rule as curl_easy_setopt's, for CURLMoption numbers.
CURLMcode curl_multi_setopt(CURLM *multi, CURLMoption option, ...) {
    va_list arguments;
    va_start(arguments, option);
    CURLMcode result;
    if (option < CURLOPTTYPE_OBJECTPOINT) {
        long value = va_arg(arguments, long);
        result = p_multi_setopt(multi, option, value);
    } else if (option < CURLOPTTYPE_OFF_T) {
        void *value = va_arg(arguments, void *);
        result = p_multi_setopt(multi, option, value);
    } else {
        curl_off_t value = va_arg(arguments, curl_off_t);
        result = p_multi_setopt(multi, option, value);
    }
    va_end(arguments);
    return result;
}

curl_version_info_data *curl_version_info(CURLversion age) { return p_version_info(age); }
