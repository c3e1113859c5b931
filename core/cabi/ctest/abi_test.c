// The C test of libsdskit (core/cabi): the ABI as a C host sees it, through the header
// generated from the IDL (gen/c/sdskit.h) only. `make test-cabi` builds the library and
// this program and runs it; it prints one line per check and "N passed, 0 failed".
//
// Covered: ABI facts; NULL pointers; undecodable requests; unknown handles, method ids,
// capability bits and clocks; double close and calls after close; begin-style host
// calls completed inside begin, from another thread, with an error, twice and with an
// unknown token; host calls from several threads at once; the manual clock.
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sdskit.h"

static int passed, failed;

#define CHECK(cond, ...)                      \
  do {                                        \
    if (cond) {                               \
      passed++;                               \
    } else {                                  \
      failed++;                               \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);           \
      fprintf(stderr, "\n");                  \
    }                                         \
  } while (0)

// --- minimal protobuf encoding ---------------------------------------------------------

typedef struct {
  uint8_t b[512];
  size_t n;
} msg;

static void put_varint(msg* m, uint64_t v) {
  while (v >= 0x80) {
    m->b[m->n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  m->b[m->n++] = (uint8_t)v;
}

static void put_bytes(msg* m, int field, const void* p, size_t n) {
  put_varint(m, ((uint64_t)field << 3) | 2);
  put_varint(m, n);
  memcpy(m->b + m->n, p, n);
  m->n += n;
}

static void put_str(msg* m, int field, const char* s) { put_bytes(m, field, s, strlen(s)); }

static void put_uint(msg* m, int field, uint64_t v) {
  put_varint(m, (uint64_t)field << 3);
  put_varint(m, v);
}

// CreateRequest{participant_id, persistence: {host: {}} or none}
static msg create_req(const char* participant, int host_persistence) {
  msg m = {.n = 0};
  put_str(&m, 1, participant);
  if (host_persistence) {
    msg choice = {.n = 0};
    put_bytes(&choice, 4, "", 0);  // PersistenceChoice.host
    put_bytes(&m, 3, choice.b, choice.n);
  }
  return m;
}

// WrapOutgoingMessageRequest{channel_id, message_id, content}
static msg wrap_req(const char* channel, const char* id, const char* content) {
  msg m = {.n = 0};
  put_str(&m, 1, channel);
  put_str(&m, 2, id);
  put_str(&m, 3, content);
  return m;
}

// Result{value: b""} and Result{error: {code, message}}
static const uint8_t ok_empty[] = {0x0a, 0x00};

static msg error_result(int code, const char* text) {
  msg e = {.n = 0};
  put_uint(&e, 1, (uint64_t)code);
  put_str(&e, 2, text);
  msg m = {.n = 0};
  put_bytes(&m, 2, e.b, e.n);
  return m;
}

// --- host implementations --------------------------------------------------------------

typedef struct {
  atomic_int begins;
  atomic_int persistence_calls;
  atomic_int event_calls;
  int mode;  // 0: complete inside begin; 1: from another thread; 2: fail SaveOutgoing
  atomic_int second_complete_rc;
  atomic_uint_least64_t last_token;
} host_state;

typedef struct {
  uint64_t token;
  const uint8_t* res;
  size_t len;
} later;

static void* complete_later(void* arg) {
  later* l = arg;
  usleep(500);
  int rc = sdskit_complete(l->token, l->res, l->len);
  if (rc != SDSKIT_OK) fprintf(stderr, "complete from thread: rc %d\n", rc);
  free(l);
  return NULL;
}

static void begin(void* user_data, uint64_t token, sdskit_cchar* service, uint32_t method_id,
                  sdskit_cbytes* req, size_t req_len) {
  (void)req;
  (void)req_len;
  host_state* h = user_data;
  atomic_fetch_add(&h->begins, 1);
  atomic_store(&h->last_token, token);
  if (strcmp(service, SDSKIT_EVENT_SINK_SERVICE) == 0) {
    atomic_fetch_add(&h->event_calls, 1);
  } else if (strcmp(service, SDSKIT_PERSISTENCE_SERVICE) == 0) {
    atomic_fetch_add(&h->persistence_calls, 1);
    if (h->mode == 2 && method_id == SDSKIT_PERSISTENCE_SAVE_OUTGOING) {
      msg e = error_result(SDSKIT_ERROR_CODE_INTERNAL, "disk full");
      sdskit_complete(token, e.b, e.n);
      return;
    }
  }
  if (h->mode == 1) {
    later* l = malloc(sizeof *l);
    l->token = token;
    l->res = ok_empty;
    l->len = sizeof ok_empty;
    pthread_t t;
    pthread_create(&t, NULL, complete_later, l);
    pthread_detach(t);
    return;
  }
  // Every method of the test's host answers an empty value: an empty ChannelSnapshot
  // for LoadAllForChannel, Empty for the rest.
  sdskit_complete(token, ok_empty, sizeof ok_empty);
  atomic_store(&h->second_complete_rc, sdskit_complete(token, ok_empty, sizeof ok_empty));
}

// --- tests -----------------------------------------------------------------------------

static int32_t call(uint64_t h, uint32_t method, const msg* m) {
  sdskit_buf out = {0};
  int32_t rc = sdskit_call(h, method, m ? m->b : NULL, m ? m->n : 0, &out);
  sdskit_free(out.data);
  return rc;
}

static uint64_t create(const msg* req, sdskit_begin_fn b, void* ud, uint32_t caps, uint64_t clock,
                       int32_t* rc) {
  uint64_t h = 0;
  sdskit_buf out = {0};
  *rc = sdskit_create(req->b, req->n, b, ud, caps, clock, &h, &out);
  if (out.data == NULL || out.len == 0) {
    failed++;
    fprintf(stderr, "FAIL: create returned no result buffer\n");
  }
  sdskit_free(out.data);
  return h;
}

static void test_abi_facts(void) {
  CHECK(sdskit_abi_version() == SDSKIT_ABI_VERSION, "abi version %u", sdskit_abi_version());
  CHECK(strcmp(sdskit_idl_hash(), SDSKIT_IDL_HASH) == 0, "idl hash %s", sdskit_idl_hash());
}

static void test_bad_create(void) {
  int32_t rc;
  uint64_t h = 42;
  sdskit_buf out = {0};
  const uint8_t garbage[] = {0xff, 0xff, 0xff};
  rc = sdskit_create(garbage, sizeof garbage, NULL, NULL, 0, 0, &h, &out);
  CHECK(rc == SDSKIT_ERROR_CODE_INVALID_ARGUMENT && h == 0 && out.len > 0, "garbage create: rc %d h %llu", rc,
        (unsigned long long)h);
  sdskit_free(out.data);

  rc = sdskit_create(NULL, 5, NULL, NULL, 0, 0, &h, &out);
  CHECK(rc == SDSKIT_ERROR_CODE_INVALID_ARGUMENT, "NULL req with length: rc %d", rc);
  sdskit_free(out.data);

  msg req = create_req("alice", 0);
  rc = sdskit_create(req.b, req.n, NULL, NULL, 0, 0, NULL, NULL);
  CHECK(rc == SDSKIT_ERROR_CODE_INVALID_ARGUMENT, "NULL out_handle: rc %d", rc);

  create(&req, NULL, NULL, SDSKIT_CAP_PERSISTENCE, 0, &rc);
  CHECK(rc == SDSKIT_ERROR_CODE_INVALID_ARGUMENT, "caps without begin: rc %d", rc);

  host_state hs = {0};
  create(&req, begin, &hs, 0x80000000u, 0, &rc);
  CHECK(rc == SDSKIT_ERROR_CODE_INVALID_ARGUMENT, "unknown capability bit: rc %d", rc);

  create(&req, begin, &hs, SDSKIT_CAP_PERSISTENCE_TRANSACTIONS, 0, &rc);
  CHECK(rc == SDSKIT_ERROR_CODE_INVALID_ARGUMENT, "transactions without persistence: rc %d", rc);

  create(&req, NULL, NULL, 0, 987654321, &rc);
  CHECK(rc == SDSKIT_ERROR_CODE_INVALID_ARGUMENT, "unknown clock: rc %d", rc);

  msg hostreq = create_req("alice", 1);
  create(&hostreq, NULL, NULL, 0, 0, &rc);
  CHECK(rc == SDSKIT_ERROR_CODE_INVALID_ARGUMENT, "host persistence without the capability: rc %d", rc);
}

static void test_calls_and_close(void) {
  int32_t rc;
  msg req = create_req("alice", 0);
  uint64_t h = create(&req, NULL, NULL, 0, 0, &rc);
  CHECK(rc == SDSKIT_OK && h != 0, "create: rc %d h %llu", rc, (unsigned long long)h);

  msg w = wrap_req("ch", "m1", "hello");
  sdskit_buf out = {0};
  rc = sdskit_call(h, SDSKIT_RELIABILITY_MANAGER_WRAP_OUTGOING_MESSAGE, w.b, w.n, &out);
  CHECK(rc == SDSKIT_OK && out.len > 10, "wrap: rc %d len %zu", rc, out.len);
  sdskit_free(out.data);

  CHECK(call(h, 9999, &w) == SDSKIT_ERROR_CODE_INVALID_ARGUMENT, "unknown method id");
  CHECK(call(h, 0, &w) == SDSKIT_ERROR_CODE_INVALID_ARGUMENT, "method id 0");
  CHECK(call(0, SDSKIT_RELIABILITY_MANAGER_WRAP_OUTGOING_MESSAGE, &w) == SDSKIT_ERROR_CODE_INVALID_ARGUMENT,
        "handle 0");
  CHECK(call(h + 1000, SDSKIT_RELIABILITY_MANAGER_WRAP_OUTGOING_MESSAGE, &w) == SDSKIT_ERROR_CODE_INVALID_ARGUMENT,
        "unknown handle");

  const uint8_t garbage[] = {0x0a, 0xff, 0xff};
  rc = sdskit_call(h, SDSKIT_RELIABILITY_MANAGER_WRAP_OUTGOING_MESSAGE, garbage, sizeof garbage, &out);
  CHECK(rc == SDSKIT_ERROR_CODE_INVALID_ARGUMENT, "undecodable request: rc %d", rc);
  sdskit_free(out.data);

  rc = sdskit_call(h, SDSKIT_RELIABILITY_MANAGER_WRAP_OUTGOING_MESSAGE, NULL, 3, &out);
  CHECK(rc == SDSKIT_ERROR_CODE_INVALID_ARGUMENT, "NULL request with length: rc %d", rc);
  sdskit_free(out.data);

  rc = sdskit_call(h, SDSKIT_RELIABILITY_MANAGER_WRAP_OUTGOING_MESSAGE, w.b, w.n, NULL);
  CHECK(rc == SDSKIT_ERROR_CODE_INVALID_ARGUMENT, "NULL out_result: rc %d", rc);

  msg empty_wrap = wrap_req("ch", "m2", "");
  CHECK(call(h, SDSKIT_RELIABILITY_MANAGER_WRAP_OUTGOING_MESSAGE, &empty_wrap) == SDSKIT_ERROR_CODE_INVALID_ARGUMENT,
        "empty content");

  msg garbage_unwrap = {.n = 0};
  put_bytes(&garbage_unwrap, 1, "\x0a\x05zz", 4);
  CHECK(call(h, SDSKIT_RELIABILITY_MANAGER_UNWRAP_RECEIVED_MESSAGE, &garbage_unwrap) ==
            SDSKIT_ERROR_CODE_DESERIALIZATION,
        "undecodable wire bytes");

  rc = sdskit_close(h, &out);
  CHECK(rc == SDSKIT_OK, "close: rc %d", rc);
  sdskit_free(out.data);
  rc = sdskit_close(h, &out);
  CHECK(rc == SDSKIT_OK && out.len > 0, "double close is idempotent: rc %d", rc);
  sdskit_free(out.data);
  CHECK(sdskit_close(h, NULL) == SDSKIT_OK, "close with NULL out_result");
  CHECK(call(h, SDSKIT_RELIABILITY_MANAGER_CLOSE, NULL) == SDSKIT_OK, "Close by method id after close");
  CHECK(call(h, SDSKIT_RELIABILITY_MANAGER_WRAP_OUTGOING_MESSAGE, &w) == SDSKIT_ERROR_CODE_CLOSED,
        "call after close");
  CHECK(call(h, 9999, &w) == SDSKIT_ERROR_CODE_CLOSED, "unknown method after close");
  CHECK(sdskit_close(h + 777, NULL) == SDSKIT_ERROR_CODE_INVALID_ARGUMENT, "close of a never-issued handle");
  sdskit_free(NULL);
}

static void test_host(int mode) {
  int32_t rc;
  host_state hs = {0};
  hs.mode = mode;
  msg req = create_req("alice", 1);
  uint32_t caps = SDSKIT_CAP_PERSISTENCE | SDSKIT_CAP_PERSISTENCE_TRANSACTIONS | SDSKIT_CAP_EVENT_SINK;
  uint64_t h = create(&req, begin, &hs, caps, 0, &rc);
  CHECK(rc == SDSKIT_OK && h != 0, "mode %d: create: rc %d", mode, rc);

  msg w = wrap_req("ch", "m1", "hello");
  rc = call(h, SDSKIT_RELIABILITY_MANAGER_WRAP_OUTGOING_MESSAGE, &w);
  if (mode == 2) {
    CHECK(rc == SDSKIT_ERROR_CODE_PERSISTENCE, "failing backend: rc %d", rc);
  } else {
    CHECK(rc == SDSKIT_OK, "mode %d: wrap through the host: rc %d", mode, rc);
  }
  CHECK(atomic_load(&hs.persistence_calls) >= 3, "mode %d: persistence calls %d", mode,
        atomic_load(&hs.persistence_calls));
  if (mode == 0) {
    CHECK(atomic_load(&hs.second_complete_rc) == SDSKIT_ERROR_CODE_INVALID_ARGUMENT,
          "second complete of a token: rc %d", atomic_load(&hs.second_complete_rc));
  }
  CHECK(sdskit_complete(atomic_load(&hs.last_token) + 1000000, ok_empty, sizeof ok_empty) ==
            SDSKIT_ERROR_CODE_INVALID_ARGUMENT,
        "unknown token");
  CHECK(sdskit_complete(0, ok_empty, sizeof ok_empty) == SDSKIT_ERROR_CODE_INVALID_ARGUMENT, "token 0");
  CHECK(sdskit_complete(atomic_load(&hs.last_token), NULL, 4) == SDSKIT_ERROR_CODE_INVALID_ARGUMENT,
        "complete with NULL result and a length");
  CHECK(sdskit_close(h, NULL) == SDSKIT_OK, "mode %d: close", mode);
}

typedef struct {
  uint64_t h;
  int idx;
  int ok;
} worker;

static void* wrap_many(void* arg) {
  worker* w = arg;
  char ch[32], id[32];
  snprintf(ch, sizeof ch, "channel-%d", w->idx);
  for (int i = 0; i < 200; i++) {
    snprintf(id, sizeof id, "m-%d", i);
    msg m = wrap_req(ch, id, "payload");
    if (call(w->h, SDSKIT_RELIABILITY_MANAGER_WRAP_OUTGOING_MESSAGE, &m) == SDSKIT_OK) w->ok++;
  }
  return NULL;
}

static void test_threads(void) {
  int32_t rc;
  host_state hs = {0};
  hs.mode = 1;  // completions from other threads
  msg req = create_req("alice", 1);
  uint64_t h = create(&req, begin, &hs, SDSKIT_CAP_PERSISTENCE | SDSKIT_CAP_PERSISTENCE_TRANSACTIONS, 0, &rc);
  enum { N = 4 };
  pthread_t t[N];
  worker ws[N];
  for (int i = 0; i < N; i++) {
    ws[i] = (worker){.h = h, .idx = i, .ok = 0};
    pthread_create(&t[i], NULL, wrap_many, &ws[i]);
  }
  int ok = 0;
  for (int i = 0; i < N; i++) {
    pthread_join(t[i], NULL);
    ok += ws[i].ok;
  }
  CHECK(ok == N * 200, "threads: %d of %d wraps succeeded", ok, N * 200);
  sdskit_close(h, NULL);
}

static void test_clock(void) {
  uint64_t c = sdskit_clock_new(1700000000000LL);
  CHECK(c != 0, "clock handle");
  CHECK(sdskit_clock_now(c) == 1700000000000LL, "clock start");
  CHECK(sdskit_clock_advance(c, 1500) == SDSKIT_OK && sdskit_clock_now(c) == 1700000001500LL, "advance");
  CHECK(sdskit_clock_set(c, 1600000000000LL) == SDSKIT_OK && sdskit_clock_now(c) == 1700000001500LL,
        "the clock never goes back");
  CHECK(sdskit_clock_advance(c, -1) == SDSKIT_ERROR_CODE_INVALID_ARGUMENT, "negative advance");
  int32_t rc;
  msg req = create_req("alice", 0);
  uint64_t h = create(&req, NULL, NULL, 0, c, &rc);
  CHECK(rc == SDSKIT_OK, "create with a manual clock: rc %d", rc);
  sdskit_close(h, NULL);
  CHECK(sdskit_clock_free(c) == SDSKIT_OK, "clock free");
  CHECK(sdskit_clock_free(c) == SDSKIT_ERROR_CODE_INVALID_ARGUMENT, "clock double free");
  CHECK(sdskit_clock_now(c) == -1, "freed clock");
}

static void test_bloom(void) {
  sdskit_buf out = {0};
  const char* ids = "[\"a\",\"b\"]";
  int32_t rc = sdskit_testing_bloom(ids, strlen(ids), 0, 0, &out);
  CHECK(rc == SDSKIT_OK && out.len > 4, "bloom: rc %d", rc);
  // The value of Result{value: bytes} starts after its tag and length.
  size_t off = 1;
  size_t len = 0;
  int shift = 0;
  while (off < out.len) {
    uint8_t b = out.data[off++];
    len |= (size_t)(b & 0x7f) << shift;
    shift += 7;
    if (!(b & 0x80)) break;
  }
  int32_t contains = -1;
  rc = sdskit_testing_bloom_contains(out.data + off, len, "a", 1, 0, 0, &contains);
  CHECK(rc == SDSKIT_OK && contains == 1, "bloom contains a: rc %d %d", rc, contains);
  rc = sdskit_testing_bloom_contains(out.data + off, len, "zz", 2, 0, 0, &contains);
  CHECK(rc == SDSKIT_OK && contains == 0, "bloom lacks zz: rc %d %d", rc, contains);
  sdskit_free(out.data);
  rc = sdskit_testing_bloom("nope", 4, 0, 0, &out);
  CHECK(rc == SDSKIT_ERROR_CODE_INVALID_ARGUMENT, "bloom bad json: rc %d", rc);
  sdskit_free(out.data);
  CHECK(sdskit_testing_bloom_contains(NULL, 0, "a", 1, 0, 0, NULL) == SDSKIT_ERROR_CODE_INVALID_ARGUMENT,
        "bloom contains NULL out");
}

int main(void) {
  test_abi_facts();
  test_bad_create();
  test_calls_and_close();
  test_host(0);
  test_host(1);
  test_host(2);
  test_threads();
  test_clock();
  test_bloom();
  printf("cabi: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
