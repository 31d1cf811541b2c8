//! chatd's bridge to ScyllaDB's Rust driver (crate `scylla`), exposed as a
//! small C ABI for the C++ store (src/store/scylla/cql.h wraps it).
//!
//! Shape: the library owns one tokio runtime. Requests are started from the
//! caller's thread and complete on the runtime; each returns a completion
//! handle (`chatd_cql_future`) that the caller waits on from its own
//! (blocking worker) thread. Results are materialised into owned rows so
//! that C++ reads them without touching Rust types.
//!
//! Ownership: every `*_new`/`*_connect`/`*_prepare`/execute return value is
//! freed by its matching `*_free`; `values` and `batch` arguments passed to
//! execute are consumed. Strings are (pointer, length), never NUL-terminated
//! on the way out.
#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

use std::ffi::{c_char, CStr};
use std::slice;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::{ExecutionError, RequestAttemptError};
use scylla::frame::types::{Consistency, SerialConsistency};
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::policies::timestamp_generator::MonotonicTimestampGenerator;
use scylla::response::{PagingState, PagingStateResponse};
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::unprepared::Statement;
use scylla::value::{CqlValue, Row};

// ------------------------------------------------------------------ errors --

/// Error kinds the C++ side maps onto chatd's errc codes.
pub const CHATD_CQL_OK: i32 = 0;
/// The cluster could not answer in time or at the consistency asked for
/// (timeouts, unavailable replicas, broken or missing connections).
pub const CHATD_CQL_UNAVAILABLE: i32 = 1;
/// The statement or its values were refused (syntax, schema, types): a bug.
pub const CHATD_CQL_INVALID: i32 = 2;

fn classify(e: &ExecutionError) -> i32 {
    use scylla::errors::DbError;
    match e {
        ExecutionError::BadQuery(_) => CHATD_CQL_INVALID,
        ExecutionError::PrepareError(_) => CHATD_CQL_INVALID,
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(db, _)) => match db {
            DbError::SyntaxError
            | DbError::Invalid
            | DbError::AlreadyExists { .. }
            | DbError::Unauthorized
            | DbError::ConfigError
            | DbError::FunctionFailure { .. } => CHATD_CQL_INVALID,
            _ => CHATD_CQL_UNAVAILABLE,
        },
        ExecutionError::LastAttemptError(RequestAttemptError::SerializationError(_))
        | ExecutionError::LastAttemptError(RequestAttemptError::CqlRequestSerialization(_)) => {
            CHATD_CQL_INVALID
        }
        _ => CHATD_CQL_UNAVAILABLE,
    }
}

// ----------------------------------------------------------------- runtime --

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        // Two workers: the driver's work is I/O and (de)serialisation; the
        // store's callers block on their own threads meanwhile.
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("chatd-cql")
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

fn consistency_of(code: i32) -> Option<Consistency> {
    Some(match code {
        0 => Consistency::Any,
        1 => Consistency::One,
        2 => Consistency::Two,
        3 => Consistency::Three,
        4 => Consistency::Quorum,
        5 => Consistency::All,
        6 => Consistency::LocalQuorum,
        7 => Consistency::EachQuorum,
        10 => Consistency::LocalOne,
        _ => return None,
    })
}

unsafe fn str_arg<'a>(p: *const c_char) -> &'a str {
    if p.is_null() {
        ""
    } else {
        CStr::from_ptr(p).to_str().unwrap_or("")
    }
}

// ----------------------------------------------------------------- results --

pub struct chatd_cql_result {
    error_kind: i32,
    error: String,
    rows: Vec<Row>,
    columns: Vec<String>,
    paging_state: Option<Vec<u8>>,
}

impl chatd_cql_result {
    fn error(kind: i32, message: String) -> Self {
        chatd_cql_result {
            error_kind: kind,
            error: message,
            rows: Vec::new(),
            columns: Vec::new(),
            paging_state: None,
        }
    }
    fn from_execution(
        r: Result<scylla::response::query_result::QueryResult, ExecutionError>,
    ) -> Self {
        match r {
            Err(e) => Self::error(classify(&e), e.to_string()),
            Ok(qr) => {
                if !qr.is_rows() {
                    return chatd_cql_result {
                        error_kind: 0,
                        error: String::new(),
                        rows: Vec::new(),
                        columns: Vec::new(),
                        paging_state: None,
                    };
                }
                match qr.into_rows_result() {
                    Err(e) => Self::error(CHATD_CQL_INVALID, e.to_string()),
                    Ok(rows) => {
                        let columns: Vec<String> = rows
                            .column_specs()
                            .iter()
                            .map(|c| c.name().to_string())
                            .collect();
                        match rows.rows::<Row>() {
                            Err(e) => Self::error(CHATD_CQL_INVALID, e.to_string()),
                            Ok(it) => match it.collect::<Result<Vec<Row>, _>>() {
                                Err(e) => Self::error(CHATD_CQL_INVALID, e.to_string()),
                                Ok(rows) => chatd_cql_result {
                                    error_kind: 0,
                                    error: String::new(),
                                    rows,
                                    columns,
                                    paging_state: None,
                                },
                            },
                        }
                    }
                }
            }
        }
    }
    fn cell(&self, row: usize, col: usize) -> Option<&CqlValue> {
        self.rows.get(row)?.columns.get(col)?.as_ref()
    }
}

// ----------------------------------------------------------------- futures --

/// A completion handle: set once by the runtime, waited on by the caller.
pub struct chatd_cql_future {
    slot: Mutex<Option<Box<chatd_cql_result>>>,
    ready: Condvar,
}

impl chatd_cql_future {
    fn new() -> Arc<Self> {
        Arc::new(chatd_cql_future {
            slot: Mutex::new(None),
            ready: Condvar::new(),
        })
    }
    fn complete(&self, r: chatd_cql_result) {
        let mut g = self.slot.lock().unwrap();
        *g = Some(Box::new(r));
        self.ready.notify_all();
    }
}

fn spawn<F>(work: F) -> *mut chatd_cql_future
where
    F: std::future::Future<Output = chatd_cql_result> + Send + 'static,
{
    let fut = chatd_cql_future::new();
    let done = fut.clone();
    runtime().spawn(async move {
        let r = work.await;
        done.complete(r);
    });
    Arc::into_raw(fut) as *mut chatd_cql_future
}

/// Blocks until the request completes; returns its result (never null),
/// which the caller frees with `chatd_cql_result_free`. A second wait on
/// the same future returns null.
#[no_mangle]
pub unsafe extern "C" fn chatd_cql_future_wait(f: *mut chatd_cql_future) -> *mut chatd_cql_result {
    let f = &*f;
    let mut g = f.slot.lock().unwrap();
    while g.is_none() {
        g = f.ready.wait(g).unwrap();
    }
    match g.take() {
        Some(b) => Box::into_raw(b),
        None => std::ptr::null_mut(),
    }
}

/// Frees the handle; the request (if still running) completes unobserved.
#[no_mangle]
pub unsafe extern "C" fn chatd_cql_future_free(f: *mut chatd_cql_future) {
    if !f.is_null() {
        drop(Arc::from_raw(f as *const chatd_cql_future));
    }
}

// ----------------------------------------------------------------- session --

#[repr(C)]
pub struct chatd_cql_config {
    /// Comma-separated host[:port] list.
    pub contact_points: *const c_char,
    /// Empty or null: no datacenter preference (token-aware only).
    pub local_dc: *const c_char,
    /// CQL protocol consistency code (ONE = 1, QUORUM = 4, LOCAL_QUORUM = 6...).
    pub consistency: i32,
    pub request_timeout_ms: u32,
    pub connect_timeout_ms: u32,
}

pub struct chatd_cql_session {
    session: Option<Arc<Session>>,
    /// Client timeout of unprepared (schema) statements: see chatd_cql_query.
    schema_timeout: Duration,
}

/// The least client timeout of a schema statement. CREATE / ALTER waits
/// until the cluster has applied the change, which on a loaded machine takes
/// longer than the few seconds a data request is given.
const MIN_SCHEMA_TIMEOUT: Duration = Duration::from_secs(30);

impl Drop for chatd_cql_session {
    fn drop(&mut self) {
        // The driver's background tasks belong to the runtime; drop inside it.
        let _g = runtime().enter();
        self.session.take();
    }
}

fn error_string(out: *mut *mut chatd_cql_result, kind: i32, msg: String) {
    if !out.is_null() {
        unsafe { *out = Box::into_raw(Box::new(chatd_cql_result::error(kind, msg))) };
    }
}

/// Connects (blocking). On failure returns null and, if `error` is not null,
/// stores a result carrying the error there (free it).
#[no_mangle]
pub unsafe extern "C" fn chatd_cql_connect(
    cfg: *const chatd_cql_config,
    error: *mut *mut chatd_cql_result,
) -> *mut chatd_cql_session {
    let cfg = &*cfg;
    let hosts: Vec<String> = str_arg(cfg.contact_points)
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if hosts.is_empty() {
        error_string(error, CHATD_CQL_INVALID, "no contact points".into());
        return std::ptr::null_mut();
    }
    let Some(consistency) = consistency_of(cfg.consistency) else {
        error_string(
            error,
            CHATD_CQL_INVALID,
            format!("unknown consistency code {}", cfg.consistency),
        );
        return std::ptr::null_mut();
    };
    let local_dc = str_arg(cfg.local_dc).to_string();
    let mut policy = DefaultPolicy::builder().token_aware(true);
    if !local_dc.is_empty() {
        // Stay in the local datacenter: LOCAL_* consistency means nothing if
        // coordinators are picked in another one.
        policy = policy.prefer_datacenter(local_dc).permit_dc_failover(false);
    }
    let request_timeout = Duration::from_millis(cfg.request_timeout_ms.max(1) as u64);
    let profile = ExecutionProfile::builder()
        .consistency(consistency)
        .serial_consistency(Some(SerialConsistency::LocalSerial))
        .request_timeout(Some(request_timeout))
        .load_balancing_policy(policy.build())
        .build();
    let builder = SessionBuilder::new()
        .known_nodes(hosts)
        .connection_timeout(Duration::from_millis(cfg.connect_timeout_ms.max(1) as u64))
        .default_execution_profile_handle(profile.into_handle())
        // Client-side, monotonic per process: two writes from one store to
        // one cell keep their order whichever coordinator takes them.
        .timestamp_generator(Arc::new(MonotonicTimestampGenerator::new()));
    match runtime().block_on(builder.build()) {
        Ok(s) => Box::into_raw(Box::new(chatd_cql_session {
            session: Some(Arc::new(s)),
            schema_timeout: request_timeout.max(MIN_SCHEMA_TIMEOUT),
        })),
        Err(e) => {
            error_string(error, CHATD_CQL_UNAVAILABLE, e.to_string());
            std::ptr::null_mut()
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn chatd_cql_session_free(s: *mut chatd_cql_session) {
    if !s.is_null() {
        drop(Box::from_raw(s));
    }
}

fn session_of(s: *mut chatd_cql_session) -> Arc<Session> {
    unsafe { (*s).session.as_ref().expect("live session").clone() }
}

/// Runs one unprepared statement without values (schema statements), with
/// the session's request timeout raised to at least MIN_SCHEMA_TIMEOUT.
#[no_mangle]
pub unsafe extern "C" fn chatd_cql_query(
    s: *mut chatd_cql_session,
    cql: *const c_char,
) -> *mut chatd_cql_future {
    let session = session_of(s);
    let mut statement = Statement::new(str_arg(cql).to_string());
    statement.set_request_timeout(Some((*s).schema_timeout));
    spawn(
        async move { chatd_cql_result::from_execution(session.query_unpaged(statement, &[]).await) },
    )
}

// ---------------------------------------------------------------- prepared --

pub struct chatd_cql_prepared {
    statement: PreparedStatement,
}

/// Prepares (blocking). `idempotent`: the driver may retry it on timeouts.
/// `consistency` < 0 keeps the session's default. On failure returns null
/// and stores the error in `error` (if not null).
#[no_mangle]
pub unsafe extern "C" fn chatd_cql_prepare(
    s: *mut chatd_cql_session,
    cql: *const c_char,
    idempotent: bool,
    consistency: i32,
    error: *mut *mut chatd_cql_result,
) -> *mut chatd_cql_prepared {
    let session = session_of(s);
    let cql = str_arg(cql).to_string();
    match runtime().block_on(session.prepare(cql)) {
        Ok(mut p) => {
            p.set_is_idempotent(idempotent);
            if consistency >= 0 {
                match consistency_of(consistency) {
                    Some(c) => p.set_consistency(c),
                    None => {
                        error_string(
                            error,
                            CHATD_CQL_INVALID,
                            format!("unknown consistency code {consistency}"),
                        );
                        return std::ptr::null_mut();
                    }
                }
            }
            Box::into_raw(Box::new(chatd_cql_prepared { statement: p }))
        }
        Err(e) => {
            error_string(error, CHATD_CQL_INVALID, e.to_string());
            std::ptr::null_mut()
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn chatd_cql_prepared_free(p: *mut chatd_cql_prepared) {
    if !p.is_null() {
        drop(Box::from_raw(p));
    }
}

// ------------------------------------------------------------------ values --

pub struct chatd_cql_values {
    values: Vec<Option<CqlValue>>,
}

#[no_mangle]
pub extern "C" fn chatd_cql_values_new(capacity: usize) -> *mut chatd_cql_values {
    Box::into_raw(Box::new(chatd_cql_values {
        values: Vec::with_capacity(capacity),
    }))
}

#[no_mangle]
pub unsafe extern "C" fn chatd_cql_values_free(v: *mut chatd_cql_values) {
    if !v.is_null() {
        drop(Box::from_raw(v));
    }
}

#[no_mangle]
pub unsafe extern "C" fn chatd_cql_values_bigint(v: *mut chatd_cql_values, x: i64) {
    (*v).values.push(Some(CqlValue::BigInt(x)));
}

#[no_mangle]
pub unsafe extern "C" fn chatd_cql_values_int(v: *mut chatd_cql_values, x: i32) {
    (*v).values.push(Some(CqlValue::Int(x)));
}

#[no_mangle]
pub unsafe extern "C" fn chatd_cql_values_boolean(v: *mut chatd_cql_values, x: bool) {
    (*v).values.push(Some(CqlValue::Boolean(x)));
}

#[no_mangle]
pub unsafe extern "C" fn chatd_cql_values_double(v: *mut chatd_cql_values, x: f64) {
    (*v).values.push(Some(CqlValue::Double(x)));
}

/// Milliseconds since the Unix epoch, for `timestamp` columns.
#[no_mangle]
pub unsafe extern "C" fn chatd_cql_values_timestamp(v: *mut chatd_cql_values, ms: i64) {
    (*v).values
        .push(Some(CqlValue::Timestamp(scylla::value::CqlTimestamp(ms))));
}

/// UTF-8 text; invalid UTF-8 is replaced rather than refused (the edge
/// validates input, so this is a last line of defence).
#[no_mangle]
pub unsafe extern "C" fn chatd_cql_values_text(v: *mut chatd_cql_values, p: *const u8, n: usize) {
    let bytes = if n == 0 {
        &[][..]
    } else {
        slice::from_raw_parts(p, n)
    };
    (*v).values.push(Some(CqlValue::Text(
        String::from_utf8_lossy(bytes).into_owned(),
    )));
}

#[no_mangle]
pub unsafe extern "C" fn chatd_cql_values_blob(v: *mut chatd_cql_values, p: *const u8, n: usize) {
    let bytes = if n == 0 {
        Vec::new()
    } else {
        slice::from_raw_parts(p, n).to_vec()
    };
    (*v).values.push(Some(CqlValue::Blob(bytes)));
}

#[no_mangle]
pub unsafe extern "C" fn chatd_cql_values_null(v: *mut chatd_cql_values) {
    (*v).values.push(None);
}

unsafe fn take_values(v: *mut chatd_cql_values) -> Vec<Option<CqlValue>> {
    if v.is_null() {
        Vec::new()
    } else {
        Box::from_raw(v).values
    }
}

// ---------------------------------------------------------------- execute --

/// Executes a prepared statement, consuming `values` (may be null).
/// `page_size` <= 0: the whole result in one response. Otherwise one page
/// of at most `page_size` rows, starting at `paging_state` (null/0: the
/// first page); the result then carries the state of the next page, if any.
#[no_mangle]
pub unsafe extern "C" fn chatd_cql_execute(
    s: *mut chatd_cql_session,
    p: *const chatd_cql_prepared,
    values: *mut chatd_cql_values,
    page_size: i32,
    paging_state: *const u8,
    paging_state_len: usize,
) -> *mut chatd_cql_future {
    let session = session_of(s);
    let mut statement = (*p).statement.clone();
    let values = take_values(values);
    if page_size <= 0 {
        return spawn(async move {
            chatd_cql_result::from_execution(session.execute_unpaged(&statement, values).await)
        });
    }
    statement.set_page_size(page_size);
    let state = if paging_state.is_null() || paging_state_len == 0 {
        PagingState::start()
    } else {
        PagingState::new_from_raw_bytes(
            slice::from_raw_parts(paging_state, paging_state_len).to_vec(),
        )
    };
    spawn(async move {
        match session.execute_single_page(&statement, values, state).await {
            Err(e) => chatd_cql_result::error(classify(&e), e.to_string()),
            Ok((qr, next)) => {
                let mut r = chatd_cql_result::from_execution(Ok(qr));
                if let PagingStateResponse::HasMorePages { state } = next {
                    r.paging_state = state.as_bytes_slice().map(|b| b.to_vec());
                }
                r
            }
        }
    })
}

// ----------------------------------------------------------------- batches --

pub struct chatd_cql_batch {
    batch: Batch,
    values: Vec<Vec<Option<CqlValue>>>,
}

/// `logged`: a logged batch (atomic across partitions, through the batch
/// log); otherwise unlogged (one round trip, for rows of one partition).
#[no_mangle]
pub extern "C" fn chatd_cql_batch_new(logged: bool) -> *mut chatd_cql_batch {
    let kind = if logged {
        BatchType::Logged
    } else {
        BatchType::Unlogged
    };
    Box::into_raw(Box::new(chatd_cql_batch {
        batch: Batch::new(kind),
        values: Vec::new(),
    }))
}

#[no_mangle]
pub unsafe extern "C" fn chatd_cql_batch_free(b: *mut chatd_cql_batch) {
    if !b.is_null() {
        drop(Box::from_raw(b));
    }
}

/// Appends a prepared statement with its values (consumed).
#[no_mangle]
pub unsafe extern "C" fn chatd_cql_batch_add(
    b: *mut chatd_cql_batch,
    p: *const chatd_cql_prepared,
    values: *mut chatd_cql_values,
) {
    let b = &mut *b;
    b.batch.append_statement((*p).statement.clone());
    b.values.push(take_values(values));
}

/// Executes the batch, consuming it.
#[no_mangle]
pub unsafe extern "C" fn chatd_cql_batch_execute(
    s: *mut chatd_cql_session,
    b: *mut chatd_cql_batch,
    idempotent: bool,
) -> *mut chatd_cql_future {
    let session = session_of(s);
    let mut b = Box::from_raw(b);
    b.batch.set_is_idempotent(idempotent);
    spawn(async move { chatd_cql_result::from_execution(session.batch(&b.batch, &b.values).await) })
}

// -------------------------------------------------------- result accessors --

#[no_mangle]
pub unsafe extern "C" fn chatd_cql_result_free(r: *mut chatd_cql_result) {
    if !r.is_null() {
        drop(Box::from_raw(r));
    }
}

/// CHATD_CQL_OK, or the error kind with its message in (msg, len).
#[no_mangle]
pub unsafe extern "C" fn chatd_cql_result_error(
    r: *const chatd_cql_result,
    msg: *mut *const u8,
    len: *mut usize,
) -> i32 {
    let r = &*r;
    if !msg.is_null() {
        *msg = r.error.as_ptr();
    }
    if !len.is_null() {
        *len = r.error.len();
    }
    r.error_kind
}

#[no_mangle]
pub unsafe extern "C" fn chatd_cql_result_row_count(r: *const chatd_cql_result) -> usize {
    (*r).rows.len()
}

#[no_mangle]
pub unsafe extern "C" fn chatd_cql_result_column_count(
    r: *const chatd_cql_result,
    row: usize,
) -> usize {
    let r = &*r;
    r.rows.get(row).map(|x| x.columns.len()).unwrap_or(0)
}

/// The index of the named column, or -1. Conditional (LWT) statements
/// answer `[applied]` plus the existing row, whose column order is the
/// server's choice, so callers look columns up by name there.
#[no_mangle]
pub unsafe extern "C" fn chatd_cql_result_column_index(
    r: *const chatd_cql_result,
    name: *const c_char,
) -> i64 {
    let r = &*r;
    let name = str_arg(name);
    r.columns
        .iter()
        .position(|c| c == name)
        .map(|i| i as i64)
        .unwrap_or(-1)
}

#[no_mangle]
pub unsafe extern "C" fn chatd_cql_result_is_null(
    r: *const chatd_cql_result,
    row: usize,
    col: usize,
) -> bool {
    (*r).cell(row, col).is_none()
}

/// bigint, int, smallint, tinyint, counter and timestamp cells as i64.
#[no_mangle]
pub unsafe extern "C" fn chatd_cql_result_i64(
    r: *const chatd_cql_result,
    row: usize,
    col: usize,
    out: *mut i64,
) -> bool {
    let v = match (*r).cell(row, col) {
        Some(CqlValue::BigInt(x)) => *x,
        Some(CqlValue::Int(x)) => *x as i64,
        Some(CqlValue::SmallInt(x)) => *x as i64,
        Some(CqlValue::TinyInt(x)) => *x as i64,
        Some(CqlValue::Counter(c)) => c.0,
        Some(CqlValue::Timestamp(t)) => t.0,
        _ => return false,
    };
    *out = v;
    true
}

#[no_mangle]
pub unsafe extern "C" fn chatd_cql_result_bool(
    r: *const chatd_cql_result,
    row: usize,
    col: usize,
    out: *mut bool,
) -> bool {
    match (*r).cell(row, col) {
        Some(CqlValue::Boolean(b)) => {
            *out = *b;
            true
        }
        _ => false,
    }
}

#[no_mangle]
pub unsafe extern "C" fn chatd_cql_result_double(
    r: *const chatd_cql_result,
    row: usize,
    col: usize,
    out: *mut f64,
) -> bool {
    match (*r).cell(row, col) {
        Some(CqlValue::Double(x)) => {
            *out = *x;
            true
        }
        Some(CqlValue::Float(x)) => {
            *out = *x as f64;
            true
        }
        _ => false,
    }
}

/// text, ascii and blob cells as bytes, valid until the result is freed.
#[no_mangle]
pub unsafe extern "C" fn chatd_cql_result_bytes(
    r: *const chatd_cql_result,
    row: usize,
    col: usize,
    p: *mut *const u8,
    n: *mut usize,
) -> bool {
    let b: &[u8] = match (*r).cell(row, col) {
        Some(CqlValue::Text(s)) | Some(CqlValue::Ascii(s)) => s.as_bytes(),
        Some(CqlValue::Blob(v)) => v.as_slice(),
        _ => return false,
    };
    *p = b.as_ptr();
    *n = b.len();
    true
}

/// The state of the next page of a paged execute; false on the last page.
#[no_mangle]
pub unsafe extern "C" fn chatd_cql_result_paging_state(
    r: *const chatd_cql_result,
    p: *mut *const u8,
    n: *mut usize,
) -> bool {
    match &(*r).paging_state {
        Some(s) => {
            *p = s.as_ptr();
            *n = s.len();
            true
        }
        None => false,
    }
}
