// libcurl, for remote shards (S3 and HTTP(S) range reads), imported by ShardRemote only, and
// loaded at run time with dlopen("libcurl.so.4") on first use (curl_loader.c): linking it would
// make libShardStoreC.so need libcurl and its TLS, HTTP/2 and LDAP libraries on every machine,
// for datasets that are local. Only the declarations come from <curl/curl.h> (libcurl4-openssl-dev
// at build time); the functions this module calls are defined in curl_loader.c, forwarding to the
// loaded library.
//
// curl_easy_setopt, curl_easy_getinfo and curl_multi_setopt are variadic, which Swift cannot
// call: these typed, non-variadic wrappers pass each kind of argument the way the option's
// documentation asks for (long, curl_off_t, a C string, a pointer, a list, a callback).
#ifndef CSHARDCURL_H
#define CSHARDCURL_H

#include <curl/curl.h>

/// Loads libcurl once (thread-safe). Returns 0 when its functions are available, -1 when the
/// library cannot be loaded or lacks one (see shard_curl_load_error()). Every curl_* function
/// this module declares may be called only after it returned 0.
int shard_curl_load(void);

/// Why shard_curl_load() failed: dlerror()'s text or the missing function; "" when it did not.
const char *shard_curl_load_error(void);

static inline CURLcode shard_curl_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode shard_curl_setopt_offset(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode shard_curl_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode shard_curl_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode shard_curl_setopt_list(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

/// CURLOPT_WRITEFUNCTION and CURLOPT_HEADERFUNCTION take a function of this type.
static inline CURLcode shard_curl_setopt_write_function(CURL *handle, CURLoption option, curl_write_callback value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode shard_curl_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode shard_curl_getinfo_offset(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode shard_curl_getinfo_pointer(CURL *handle, CURLINFO info, void **value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLMcode shard_curl_multi_setopt_long(CURLM *multi, CURLMoption option, long value) {
    return curl_multi_setopt(multi, option, value);
}

/// The result of a finished transfer from a CURLMsg (its `data` is a union).
static inline CURLcode shard_curl_message_result(const CURLMsg *message) {
    return message->data.result;
}

/// curl_version_info's version number (0x078801 for 7.88.1).
static inline unsigned int shard_curl_version_number(void) {
    return curl_version_info(CURLVERSION_NOW)->version_num;
}

#endif
