/* The C ABI of chatd's CQL bridge (src/store/scylla/ffi/src/lib.rs), a thin
 * layer over ScyllaDB's Rust driver. C++ code uses it through
 * store/scylla/cql.h, which adds RAII and chatd::result.
 *
 * Ownership: every handle returned is freed by its *_free. `values` and
 * `batch` arguments of execute calls are consumed. Byte pointers returned by
 * result accessors live as long as the result. */
#ifndef CHATD_CQL_H
#define CHATD_CQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { CHATD_CQL_OK = 0, CHATD_CQL_UNAVAILABLE = 1, CHATD_CQL_INVALID = 2 };

typedef struct chatd_cql_session chatd_cql_session;
typedef struct chatd_cql_prepared chatd_cql_prepared;
typedef struct chatd_cql_values chatd_cql_values;
typedef struct chatd_cql_batch chatd_cql_batch;
typedef struct chatd_cql_future chatd_cql_future;
typedef struct chatd_cql_result chatd_cql_result;

typedef struct chatd_cql_config {
  const char* contact_points; /* "host[:port],host[:port]" */
  const char* local_dc;       /* "" or NULL: no datacenter preference */
  int32_t consistency;        /* CQL protocol code: ONE 1, QUORUM 4, LOCAL_QUORUM 6, LOCAL_ONE 10 ... */
  uint32_t request_timeout_ms;
  uint32_t connect_timeout_ms;
} chatd_cql_config;

chatd_cql_session* chatd_cql_connect(const chatd_cql_config* cfg, chatd_cql_result** error);
void chatd_cql_session_free(chatd_cql_session* s);

chatd_cql_future* chatd_cql_query(chatd_cql_session* s, const char* cql);

chatd_cql_prepared* chatd_cql_prepare(chatd_cql_session* s, const char* cql, bool idempotent, int32_t consistency,
                                      chatd_cql_result** error);
void chatd_cql_prepared_free(chatd_cql_prepared* p);

chatd_cql_values* chatd_cql_values_new(size_t capacity);
void chatd_cql_values_free(chatd_cql_values* v);
void chatd_cql_values_bigint(chatd_cql_values* v, int64_t x);
void chatd_cql_values_int(chatd_cql_values* v, int32_t x);
void chatd_cql_values_boolean(chatd_cql_values* v, bool x);
void chatd_cql_values_double(chatd_cql_values* v, double x);
void chatd_cql_values_timestamp(chatd_cql_values* v, int64_t ms);
void chatd_cql_values_text(chatd_cql_values* v, const uint8_t* p, size_t n);
void chatd_cql_values_blob(chatd_cql_values* v, const uint8_t* p, size_t n);
void chatd_cql_values_null(chatd_cql_values* v);

chatd_cql_future* chatd_cql_execute(chatd_cql_session* s, const chatd_cql_prepared* p, chatd_cql_values* values,
                                    int32_t page_size, const uint8_t* paging_state, size_t paging_state_len);

chatd_cql_batch* chatd_cql_batch_new(bool logged);
void chatd_cql_batch_free(chatd_cql_batch* b);
void chatd_cql_batch_add(chatd_cql_batch* b, const chatd_cql_prepared* p, chatd_cql_values* values);
chatd_cql_future* chatd_cql_batch_execute(chatd_cql_session* s, chatd_cql_batch* b, bool idempotent);

chatd_cql_result* chatd_cql_future_wait(chatd_cql_future* f);
void chatd_cql_future_free(chatd_cql_future* f);

void chatd_cql_result_free(chatd_cql_result* r);
int32_t chatd_cql_result_error(const chatd_cql_result* r, const uint8_t** msg, size_t* len);
size_t chatd_cql_result_row_count(const chatd_cql_result* r);
size_t chatd_cql_result_column_count(const chatd_cql_result* r, size_t row);
int64_t chatd_cql_result_column_index(const chatd_cql_result* r, const char* name);
bool chatd_cql_result_is_null(const chatd_cql_result* r, size_t row, size_t col);
bool chatd_cql_result_i64(const chatd_cql_result* r, size_t row, size_t col, int64_t* out);
bool chatd_cql_result_bool(const chatd_cql_result* r, size_t row, size_t col, bool* out);
bool chatd_cql_result_double(const chatd_cql_result* r, size_t row, size_t col, double* out);
bool chatd_cql_result_bytes(const chatd_cql_result* r, size_t row, size_t col, const uint8_t** p, size_t* n);
bool chatd_cql_result_paging_state(const chatd_cql_result* r, const uint8_t** p, size_t* n);

#ifdef __cplusplus
}
#endif

#endif /* CHATD_CQL_H */
