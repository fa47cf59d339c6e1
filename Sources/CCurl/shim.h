// libcurl's easy interface; imported only by CraftRegistry (Sources/CraftRegistry/Remote/HTTPClient.swift).
// curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call: these wrappers give
// each argument type its own function.
#include <curl/curl.h>

static inline CURLcode craft_curl_set_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode craft_curl_set_offset(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

/// For options whose argument is a pointer: strings (copied by libcurl), lists, buffers, user data.
static inline CURLcode craft_curl_set_pointer(CURL *handle, CURLoption option, const void *value) {
    return curl_easy_setopt(handle, option, value);
}

typedef size_t (*craft_curl_callback)(char *data, size_t size, size_t count, void *context);

/// CURLOPT_WRITEFUNCTION or CURLOPT_HEADERFUNCTION.
static inline CURLcode craft_curl_set_callback(CURL *handle, CURLoption option, craft_curl_callback callback) {
    return curl_easy_setopt(handle, option, callback);
}

static inline CURLcode craft_curl_get_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode craft_curl_get_string(CURL *handle, CURLINFO info, char **value) {
    return curl_easy_getinfo(handle, info, value);
}
