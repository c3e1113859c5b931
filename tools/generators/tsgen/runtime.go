package tsgen

import (
	"strings"
)

// runtime writes the error model, the Result union and the transport helpers into the
// file declaring Result.
func (g *fileGen) runtime() {
	em := g.em
	create, fromBinary, toBinary := g.pb("create"), g.pb("fromBinary"), g.pb("toBinary")
	descMessage, initShape, shape := g.pbType("DescMessage"), g.pbType("MessageInitShape"), g.pbType("MessageShape")
	errorCode := g.enumRef(em.CodeEnum)
	errorMsg := g.msgType(em.Error)
	errorSchema := g.schema(em.Error)
	resultSchema := g.schema(em.Result)
	oneof := localName(string(em.ResultOneof.Desc.Name()))
	valueCase := localName(em.Value.Name)
	errorCase := localName(em.ErrorField.Name)
	codeF, textF, opF := localName(em.Code.Name), localName(em.Text.Name), localName(em.Op.Name)
	code := func(s string) string { return g.codeRef(s) }

	for _, n := range []string{"ABI_VERSION", "IDL_HASH", "SdsError", "errorCodeName", "Ok", "Err", "Result",
		"ok", "err", "fail", "unwrap", "CallFunc", "HostAnswer", "isPromiseLike", "encodeResultValue",
		"encodeResultError", "decodeResult", "invokeCore", "invokeCoreVoid", "dispatchHostMethod", "settleHostResult"} {
		g.decl(n)
	}

	r := strings.NewReplacer(
		"$create", create, "$fromBinary", fromBinary, "$toBinary", toBinary,
		"$DescMessage", descMessage, "$MessageInitShape", initShape, "$MessageShape", shape,
		"$ErrorCode", errorCode, "$ErrorMessage", errorMsg, "$ErrorSchema", errorSchema,
		"$ResultSchema", resultSchema, "$oneof", oneof, "$valueCase", valueCase, "$errorCase", errorCase,
		"$code", codeF, "$text", textF, "$op", opF,
		"$INVALID_ARGUMENT", code("INVALID_ARGUMENT"), "$SERIALIZATION", code("SERIALIZATION"),
		"$DESERIALIZATION", code("DESERIALIZATION"), "$INTERNAL", code("INTERNAL"),
		"$ABI", itoa(g.m.ABIVersion), "$IDL_HASH", g.m.IDLHash,
	)
	for _, line := range strings.Split(strings.TrimPrefix(r.Replace(runtimeTS), "\n"), "\n") {
		g.p("%s", line)
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	if neg {
		b = append([]byte{'-'}, b...)
	}
	return string(b)
}

// runtimeTS is the runtime, with $placeholders for the IDL's names.
const runtimeTS = `
/**
 * ABI_VERSION is the version of the handle-based ABI this code speaks (the Result
 * envelope, the method-id dispatch, the CallFunc transport). A core library whose
 * ABI version differs must be refused.
 */
export const ABI_VERSION = $ABI;

/**
 * IDL_HASH identifies the IDL this code was generated from (hex SHA-256 of its
 * declarations). A core library built from another IDL must be refused.
 */
export const IDL_HASH = "$IDL_HASH";

/** errorCodeName returns the name of an error code without its prefix, e.g. "PERSISTENCE". */
export function errorCodeName(code: $ErrorCode): string {
  return $ErrorCode[code] ?? "CODE_" + String(code);
}

/**
 * SdsError is the typed error of every Result: an error code, the human-readable
 * detail and the operation that failed. Its message reads "op: CODE: detail".
 */
export class SdsError extends Error {
  /** The classification. */
  readonly code: $ErrorCode;
  /** Human-readable detail (the IDL Error's message). */
  readonly detail: string;
  /** The operation that failed, e.g. "WrapOutgoingMessage" (may be empty). */
  readonly op: string;

  constructor(code: $ErrorCode, detail = "", op = "", options?: { cause?: unknown }) {
    super(SdsError.format(code, detail, op), options);
    this.name = "SdsError";
    this.code = code;
    this.detail = detail;
    this.op = op;
  }

  /** The code's name, e.g. "PERSISTENCE". */
  get codeName(): string {
    return errorCodeName(this.code);
  }

  /** Reports whether the error has the given code. */
  is(code: $ErrorCode): boolean {
    return this.code === code;
  }

  /** Returns the error as the IDL message. */
  toProto(): $ErrorMessage {
    return $create($ErrorSchema, { $code: this.code, $text: this.detail, $op: this.op });
  }

  /** Converts the IDL message. */
  static fromProto(e: $ErrorMessage): SdsError {
    return new SdsError(e.$code, e.$text, e.$op);
  }

  /**
   * Converts anything thrown: an SdsError is kept as it is; anything else becomes an
   * SdsError with the given code (INTERNAL by default) and the thrown value's message.
   */
  static from(thrown: unknown, code: $ErrorCode = $INTERNAL, op = ""): SdsError {
    if (thrown instanceof SdsError) {
      return thrown;
    }
    const detail = thrown instanceof Error ? thrown.message : String(thrown);
    return new SdsError(code, detail, op, { cause: thrown });
  }

  private static format(code: $ErrorCode, detail: string, op: string): string {
    return [op, errorCodeName(code), detail].filter((s) => s !== "").join(": ");
  }
}

/** Ok is a successful Result. */
export interface Ok<T> {
  readonly ok: true;
  readonly value: T;
  readonly error?: undefined;
}

/** Err is a failed Result. */
export interface Err<E> {
  readonly ok: false;
  readonly error: E;
  readonly value?: undefined;
}

/**
 * Result is what every call across the language boundary returns: a value or a typed
 * error, discriminated by ok.
 */
export type Result<T, E = SdsError> = Ok<T> | Err<E>;

/** ok returns a successful Result. */
export function ok(): Ok<void>;
export function ok<T>(value: T): Ok<T>;
export function ok<T>(value?: T): Ok<T | undefined> {
  return { ok: true, value };
}

/** err returns a failed Result. */
export function err<E = SdsError>(error: E): Err<E> {
  return { ok: false, error };
}

/** fail returns a failed Result carrying a new SdsError. */
export function fail(code: $ErrorCode, detail: string, op = ""): Err<SdsError> {
  return err(new SdsError(code, detail, op));
}

/** unwrap returns the value of a successful Result and throws the error of a failed one. */
export function unwrap<T, E>(result: Result<T, E>): T {
  if (result.ok) {
    return result.value;
  }
  throw result.error;
}

/**
 * CallFunc carries one call into a core service: a method id and the encoded request in,
 * the encoded Result out.
 */
export type CallFunc = (methodId: number, request: Uint8Array) => Promise<Uint8Array>;

/** HostAnswer is what a host dispatcher answers: encoded Result bytes, at once or later. */
export type HostAnswer = Uint8Array | Promise<Uint8Array>;

/** isPromiseLike reports whether v is a thenable. */
export function isPromiseLike(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === "object" || typeof v === "function") && v !== null && typeof (v as { then?: unknown }).then === "function";
}

/** encodeResultValue encodes a Result carrying a message. */
export function encodeResultValue<Desc extends $DescMessage>(schema: Desc, value: $MessageInitShape<Desc>, op = ""): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = $toBinary(schema, $create(schema, value));
  } catch (e) {
    return encodeResultError(SdsError.from(e, $SERIALIZATION, op));
  }
  return $toBinary($ResultSchema, $create($ResultSchema, { $oneof: { case: "$valueCase", value: bytes } }));
}

/** encodeResultError encodes a Result carrying an error. */
export function encodeResultError(error: SdsError): Uint8Array {
  return $toBinary($ResultSchema, $create($ResultSchema, { $oneof: { case: "$errorCase", value: error.toProto() } }));
}

/**
 * decodeResult decodes Result bytes whose value is a message of schema; undecodable
 * bytes give DESERIALIZATION.
 */
export function decodeResult<Desc extends $DescMessage>(schema: Desc, bytes: Uint8Array, op: string): Result<$MessageShape<Desc>> {
  try {
    const r = $fromBinary($ResultSchema, bytes).$oneof;
    switch (r.case) {
      case "$valueCase":
        return ok($fromBinary(schema, r.value));
      case "$errorCase":
        if (r.value.$code === 0) {
          return fail($INTERNAL, "the result holds an error without a code: " + r.value.$text, op);
        }
        return err(SdsError.fromProto(r.value));
      default:
        return fail($DESERIALIZATION, "the result holds neither a value nor an error", op);
    }
  } catch (e) {
    return err(SdsError.from(e, $DESERIALIZATION, op));
  }
}

/**
 * invokeCore calls method methodId of a core service over call: it encodes the request
 * (SERIALIZATION on failure), awaits the Result bytes (a throwing transport gives
 * INTERNAL) and decodes them.
 */
export async function invokeCore<I extends $DescMessage, O extends $DescMessage>(
  call: CallFunc, methodId: number, op: string, input: I, output: O, request: $MessageInitShape<I>,
): Promise<Result<$MessageShape<O>>> {
  let bytes: Uint8Array;
  try {
    bytes = $toBinary(input, $create(input, request));
  } catch (e) {
    return err(SdsError.from(e, $SERIALIZATION, op));
  }
  let res: Uint8Array;
  try {
    res = await call(methodId, bytes);
  } catch (e) {
    return err(SdsError.from(e, $INTERNAL, op));
  }
  return decodeResult(output, res, op);
}

/** invokeCoreVoid is invokeCore for methods that return only an error. */
export async function invokeCoreVoid<I extends $DescMessage, O extends $DescMessage>(
  call: CallFunc, methodId: number, op: string, input: I, output: O, request: $MessageInitShape<I>,
): Promise<Result<void>> {
  const r = await invokeCore(call, methodId, op, input, output, request);
  return r.ok ? ok() : r;
}

/**
 * dispatchHostMethod decodes a host method's request (INVALID_ARGUMENT when it does
 * not decode), runs invoke and encodes its Result. A throw or a rejection becomes an
 * error with thrownCode; a synchronous answer is encoded at once.
 */
export function dispatchHostMethod<I extends $DescMessage, O extends $DescMessage>(
  op: string, input: I, request: Uint8Array, output: O, thrownCode: $ErrorCode,
  invoke: (request: $MessageShape<I>) => unknown,
): HostAnswer {
  let req: $MessageShape<I>;
  try {
    req = $fromBinary(input, request);
  } catch (e) {
    return encodeResultError(new SdsError($INVALID_ARGUMENT, "cannot decode the request: " + String(e), op));
  }
  let answer: unknown;
  try {
    answer = invoke(req);
  } catch (e) {
    return encodeResultError(SdsError.from(e, thrownCode, op));
  }
  if (isPromiseLike(answer)) {
    return Promise.resolve(answer).then(
      (v) => settleHostResult(op, output, thrownCode, v),
      (e: unknown) => encodeResultError(SdsError.from(e, thrownCode, op)),
    );
  }
  return settleHostResult(op, output, thrownCode, answer);
}

/** settleHostResult encodes what a host method answered (a Result of the output message). */
export function settleHostResult<O extends $DescMessage>(op: string, output: O, thrownCode: $ErrorCode, answer: unknown): Uint8Array {
  if (typeof answer !== "object" || answer === null || typeof (answer as { ok?: unknown }).ok !== "boolean") {
    return encodeResultError(new SdsError(thrownCode, "the host method answered " + String(answer) + ", not a Result", op));
  }
  const r = answer as Result<unknown, unknown>;
  if (!r.ok) {
    return encodeResultError(SdsError.from(r.error, thrownCode, op));
  }
  return encodeResultValue(output, (r.value ?? {}) as $MessageInitShape<O>, op);
}
`
