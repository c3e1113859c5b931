package gogen

import (
	"fmt"

	"github.com/dave/jennifer/jen"
)

// runtime renders the helpers every service of the package shares; they go into the
// file that declares Result.
func (g *fileGen) runtime() {
	em := g.em
	errT := ident(em.Error.Proto.GoIdent)
	errName := em.Error.Proto.GoIdent.GoName
	resT := ident(em.Result.Proto.GoIdent)
	codeGet := "Get" + em.Code.Proto.GoName
	opGet := "Get" + em.Op.Proto.GoName
	textGet := "Get" + em.Text.Proto.GoName
	for _, method := range []string{"Error", "Is", "Proto"} {
		for _, fd := range em.Error.Proto.Fields {
			if fd.GoName == method || "Get"+fd.GoName == method {
				*g.errs = append(*g.errs, fmt.Sprintf("%s: field %s of %s clashes with the generated method %s.%s", g.f.Path, fd.Desc.Name(), errName, errName, method))
			}
		}
	}

	g.add(fmt.Sprintf(`%s is the version of the ABI between the core and the SDKs: the Result
envelope, method-id dispatch and the CallFunc transport. An SDK refuses a core
library whose %s differs from the one it was generated with.`, g.decl("ABIVersion"), "ABIVersion"),
		jen.Const().Id("ABIVersion").Op("=").Lit(g.m.ABIVersion))

	g.add(fmt.Sprintf(`%s identifies the IDL this package was generated from: the SHA-256 of its
files' descriptors without comments (see tools/generators/model.IDLHash). An SDK
refuses a core library whose %s differs from the one it was generated with.`, g.decl("IDLHash"), "IDLHash"),
		jen.Const().Id("IDLHash").Op("=").Lit(g.m.IDLHash))

	// (*Error).Error
	g.add(fmt.Sprintf(`Error formats the error as "op: CODE: message", leaving out what is empty, so that
an *%s is a Go error.`, errName),
		jen.Func().Params(jen.Id("e").Op("*").Add(errT)).Id("Error").Params().String().Block(
			jen.Id("code").Op(":=").Qual(stringsPkg, "TrimPrefix").Call(jen.Id("e").Dot(codeGet).Call().Dot("String").Call(), jen.Lit(em.CodePrefix)),
			jen.Switch(jen.List(jen.Id("op"), jen.Id("msg")).Op(":=").List(jen.Id("e").Dot(opGet).Call(), jen.Id("e").Dot(textGet).Call()), jen.Empty()).Block(
				jen.Case(jen.Id("op").Op("!=").Lit("").Op("&&").Id("msg").Op("!=").Lit("")).Block(
					jen.Return(jen.Id("op").Op("+").Lit(": ").Op("+").Id("code").Op("+").Lit(": ").Op("+").Id("msg"))),
				jen.Case(jen.Id("op").Op("!=").Lit("")).Block(
					jen.Return(jen.Id("op").Op("+").Lit(": ").Op("+").Id("code"))),
				jen.Case(jen.Id("msg").Op("!=").Lit("")).Block(
					jen.Return(jen.Id("code").Op("+").Lit(": ").Op("+").Id("msg"))),
			),
			jen.Return(jen.Id("code")),
		))

	// (*Error).Is
	g.add(fmt.Sprintf(`Is reports whether target is an *%s with the same code, so that
errors.Is(err, &%s{%s: c}) tests an error's code.`, errName, errName, em.Code.Proto.GoName),
		jen.Func().Params(jen.Id("e").Op("*").Add(errT)).Id("Is").Params(jen.Id("target").Error()).Bool().Block(
			jen.List(jen.Id("t"), jen.Id("ok")).Op(":=").Id("target").Assert(jen.Op("*").Add(errT)),
			jen.Return(jen.Id("ok").Op("&&").Id("t").Op("!=").Nil().Op("&&").Id("e").Dot(codeGet).Call().Op("==").Id("t").Dot(codeGet).Call()),
		))

	// (*Error).Proto
	g.add(fmt.Sprintf(`Proto returns e itself: an *%s is one of the typed errors %s recognises.`, errName, g.decl(errName+"From")),
		jen.Func().Params(jen.Id("e").Op("*").Add(errT)).Id("Proto").Params().Op("*").Add(errT).Block(jen.Return(jen.Id("e"))))

	// ErrorFrom
	from := errName + "From"
	g.add(fmt.Sprintf(`%s converts any error into the IDL's %s, the error half of a Result:
  - the first error in err's chain with a Proto() *%s method (an *%s, the core's
    *sdserr.Error) gives its %s, code included;
  - context.Canceled and context.DeadlineExceeded give %s;
  - anything else gives %s with err.Error() as its message.

A nil err gives nil.`, from, errName, errName, errName, errName, g.em.Codes["CANCELLED"].GoIdent.GoName, g.em.Codes["INTERNAL"].GoIdent.GoName),
		jen.Func().Id(from).Params(jen.Id("err").Error()).Op("*").Add(errT).Block(
			jen.If(jen.Id("err").Op("==").Nil()).Block(jen.Return(jen.Nil())),
			jen.Var().Id("typed").Interface(jen.Id("Proto").Params().Op("*").Add(errT)),
			jen.If(jen.Qual(errorsPkg, "As").Call(jen.Id("err"), jen.Op("&").Id("typed"))).Block(
				jen.If(jen.Id("e").Op(":=").Id("typed").Dot("Proto").Call(), jen.Id("e").Op("!=").Nil()).Block(jen.Return(jen.Id("e"))),
			),
			jen.If(jen.Qual(errorsPkg, "Is").Call(jen.Id("err"), jen.Qual(ctxPkg, "Canceled")).Op("||").Qual(errorsPkg, "Is").Call(jen.Id("err"), jen.Qual(ctxPkg, "DeadlineExceeded"))).Block(
				jen.Return(g.newError("CANCELLED", nil, jen.Id("err").Dot("Error").Call())),
			),
			jen.Return(g.newError("INTERNAL", nil, jen.Id("err").Dot("Error").Call())),
		))

	// PanicError
	g.add(g.decl("PanicError")+` is the error a generated host adapter returns when a host method panics: the
panic never crosses the adapter.`,
		jen.Type().Id("PanicError").Struct(
			jen.Comment(`Op is the method that panicked, e.g. "SaveOutgoing" or "Commit".`),
			jen.Id("Op").String(),
			jen.Comment("Value is the value passed to panic."),
			jen.Id("Value").Any(),
		))
	g.add(`Error returns "backend panicked in <Op>: <Value>".`,
		jen.Func().Params(jen.Id("e").Op("*").Id("PanicError")).Id("Error").Params().String().Block(
			jen.Return(jen.Qual(fmtPkg, "Sprintf").Call(jen.Lit("backend panicked in %s: %v"), jen.Id("e").Dot("Op"), jen.Id("e").Dot("Value")))))
	g.add(`Unwrap returns the panic value when it is an error.`,
		jen.Func().Params(jen.Id("e").Op("*").Id("PanicError")).Id("Unwrap").Params().Error().Block(
			jen.List(jen.Id("err"), jen.Id("_")).Op(":=").Id("e").Dot("Value").Assert(jen.Error()),
			jen.Return(jen.Id("err"))))

	// CallFunc
	g.add(g.decl("CallFunc")+` is the transport of the generated clients: it delivers the encoded request of
method methodID to an implementation of the service and returns the encoded Result
(value: the encoded response; error: an `+errName+`). A Dispatch<Service> function
bound to an implementation is one; the C and wasm glue provide others. An error
returned by the CallFunc itself (the transport failed) is returned to the client's
caller unchanged.`,
		jen.Type().Id("CallFunc").Func().Params(jen.Id("ctx").Qual(ctxPkg, "Context"), jen.Id("methodID").Uint32(), jen.Id("req").Index().Byte()).Params(jen.Index().Byte(), jen.Error()))

	// MethodDesc
	g.add(g.decl("MethodDesc")+` is one entry of a service's dispatch table: how to call method ID of an
implementation S with an encoded request.`,
		jen.Type().Id("MethodDesc").Types(jen.Id("S").Any()).Struct(
			jen.Comment("ID is the method's stable id (its method_id option)."),
			jen.Id("ID").Uint32(),
			jen.Comment(`Name is the method's name, e.g. "EnsureChannel".`),
			jen.Id("Name").String(),
			jen.Comment("Optional is true when an implementation may lack the method (optional_method)."),
			jen.Id("Optional").Bool(),
			jen.Comment("Invoke decodes req, calls the method of srv and returns its response (nil for"),
			jen.Comment("Empty). Its error is the method's, or an "+errName+" when req does not decode or"),
			jen.Comment("srv lacks an optional method."),
			jen.Id("Invoke").Func().Params(jen.Id("ctx").Qual(ctxPkg, "Context"), jen.Id("srv").Id("S"), jen.Id("req").Index().Byte()).Params(jen.Qual(protoPkg, "Message"), jen.Error()),
		))

	valueWrap := ident(em.Value.Proto.GoIdent)
	errWrap := ident(em.ErrorField.Proto.GoIdent)
	oneof := em.ResultOneof.GoName

	// sdkResultError
	g.add(g.decl("sdkResultError")+` encodes a Result holding e; its strings are made valid UTF-8 first so that
encoding cannot fail on a foreign error text (nor panic).`,
		jen.Func().Id("sdkResultError").Params(jen.Id("e").Op("*").Add(errT)).Index().Byte().Block(
			jen.Id("safe").Op(":=").Op("&").Add(errT).Values(jen.Dict{
				jen.Id(em.Code.Proto.GoName): jen.Id("e").Dot(codeGet).Call(),
				jen.Id(em.Op.Proto.GoName):   jen.Qual(stringsPkg, "ToValidUTF8").Call(jen.Id("e").Dot(opGet).Call(), jen.String().Parens(jen.Qual("unicode/utf8", "RuneError"))),
				jen.Id(em.Text.Proto.GoName): jen.Qual(stringsPkg, "ToValidUTF8").Call(jen.Id("e").Dot(textGet).Call(), jen.String().Parens(jen.Qual("unicode/utf8", "RuneError"))),
			}),
			jen.List(jen.Id("out"), jen.Id("err")).Op(":=").Qual(protoPkg, "Marshal").Call(
				jen.Op("&").Add(resT).Values(jen.Dict{jen.Id(oneof): jen.Op("&").Add(errWrap).Values(jen.Dict{jen.Id(em.ErrorField.Proto.GoName): jen.Id("safe")})})),
			jen.If(jen.Id("err").Op("!=").Nil()).Block(
				jen.List(jen.Id("out"), jen.Id("_")).Op("=").Qual(protoPkg, "Marshal").Call(
					jen.Op("&").Add(resT).Values(jen.Dict{jen.Id(oneof): jen.Op("&").Add(errWrap).Values(jen.Dict{jen.Id(em.ErrorField.Proto.GoName): g.newError("INTERNAL", jen.Id("safe").Dot(opGet).Call(), jen.Lit("cannot encode an error result"))})})),
			),
			jen.Return(jen.Id("out")),
		))

	// Alloc
	g.add(g.decl("Alloc")+` supplies the memory a Dispatch<Service>Into function writes an encoded Result
into: a slice of length n. It may be called more than once for one call (when encoding
the response fails, the error Result goes into a second allocation); the Result is in
the memory of the last call, and releasing the memory of earlier calls is up to the
caller. The C glue allocates C memory here, so that a ~19 KB message is marshalled
once, where the host reads it, instead of into the Go heap and then copied.`,
		jen.Type().Id("Alloc").Func().Params(jen.Id("n").Int()).Index().Byte())

	// Alloc.Place
	g.add(`Place returns the encoded Result b in memory from a: a copy, or b itself when a is nil.`,
		jen.Func().Params(jen.Id("a").Id("Alloc")).Id("Place").Params(jen.Id("b").Index().Byte()).Index().Byte().Block(
			jen.If(jen.Id("a").Op("==").Nil()).Block(jen.Return(jen.Id("b"))),
			jen.Id("out").Op(":=").Id("a").Call(jen.Len(jen.Id("b"))),
			jen.Copy(jen.Id("out"), jen.Id("b")),
			jen.Return(jen.Id("out")),
		))

	// ResponseReleaser
	g.add(g.decl("ResponseReleaser")+` is implemented by a server that takes back each response once a
Dispatch<Service> function has marshalled it, to reuse its buffers (a wrapped message's
~19 KB of wire bytes); the dispatch does not touch the response afterwards.`,
		jen.Type().Id("ResponseReleaser").Interface(
			jen.Comment("ReleaseResponse receives a response of the server after it was marshalled."),
			jen.Id("ReleaseResponse").Params(jen.Id("resp").Qual(protoPkg, "Message")),
		))

	// sdkDispatch
	g.add(g.decl("sdkDispatch")+` runs call and encodes its outcome as a Result, in memory from alloc (the Go
heap when nil): its value, or `+from+`(err) with op filled in when empty. A panic in
call becomes an `+g.em.Codes["INTERNAL"].GoIdent.GoName+` error: it never propagates to the caller. A value
goes back to srv once marshalled when srv is a ResponseReleaser.`,
		jen.Func().Id("sdkDispatch").Params(jen.Id("op").String(), jen.Id("alloc").Id("Alloc"), jen.Id("srv").Any(), jen.Id("call").Func().Params().Params(jen.Qual(protoPkg, "Message"), jen.Error())).Params(jen.Id("out").Index().Byte()).Block(
			jen.Defer().Func().Params().Block(
				jen.If(jen.Id("v").Op(":=").Recover(), jen.Id("v").Op("!=").Nil()).Block(
					jen.Id("out").Op("=").Id("alloc").Dot("Place").Call(jen.Id("sdkResultError").Call(g.newError("INTERNAL", jen.Id("op"), jen.Qual(fmtPkg, "Sprintf").Call(jen.Lit("panic: %v"), jen.Id("v"))))),
				),
			).Call(),
			jen.List(jen.Id("value"), jen.Id("err")).Op(":=").Id("call").Call(),
			jen.If(jen.Id("err").Op("!=").Nil()).Block(
				jen.Id("e").Op(":=").Id(from).Call(jen.Id("err")),
				jen.If(jen.Id("e").Dot(opGet).Call().Op("==").Lit("")).Block(
					jen.Id("e").Op("=").Op("&").Add(errT).Values(jen.Dict{
						jen.Id(em.Code.Proto.GoName): jen.Id("e").Dot(codeGet).Call(),
						jen.Id(em.Op.Proto.GoName):   jen.Id("op"),
						jen.Id(em.Text.Proto.GoName): jen.Id("e").Dot(textGet).Call(),
					}),
				),
				jen.Return(jen.Id("alloc").Dot("Place").Call(jen.Id("sdkResultError").Call(jen.Id("e")))),
			),
			jen.Comment("The response is marshalled straight into the Result's value field (tag, length,"),
			jen.Comment("bytes: what marshalling a Result holding it gives), so that its bytes — ~19 KB for"),
			jen.Comment("a message with a default bloom filter — are copied once, not twice."),
			jen.Id("size").Op(":=").Lit(0),
			jen.If(jen.Id("value").Op("!=").Nil()).Block(jen.Id("size").Op("=").Qual(protoPkg, "Size").Call(jen.Id("value"))),
			jen.Id("n").Op(":=").Qual(wirePkg, "SizeTag").Call(jen.Lit(int(em.Value.Number))).Op("+").Qual(wirePkg, "SizeBytes").Call(jen.Id("size")),
			jen.If(jen.Id("alloc").Op("==").Nil()).Block(
				jen.Id("out").Op("=").Make(jen.Index().Byte(), jen.Lit(0), jen.Id("n")),
			).Else().Block(
				jen.Id("out").Op("=").Id("alloc").Call(jen.Id("n")).Index(jen.Empty(), jen.Lit(0)),
			),
			jen.Id("out").Op("=").Qual(wirePkg, "AppendTag").Call(jen.Id("out"), jen.Lit(int(em.Value.Number)), jen.Qual(wirePkg, "BytesType")),
			jen.Id("out").Op("=").Qual(wirePkg, "AppendVarint").Call(jen.Id("out"), jen.Uint64().Call(jen.Id("size"))),
			jen.If(jen.Id("value").Op("==").Nil()).Block(jen.Return(jen.Id("out"))),
			jen.List(jen.Id("out"), jen.Id("err")).Op("=").Qual(protoPkg, "MarshalOptions").Values(jen.Dict{jen.Id("UseCachedSize"): jen.True()}).Dot("MarshalAppend").Call(jen.Id("out"), jen.Id("value")),
			jen.If(jen.List(jen.Id("r"), jen.Id("ok")).Op(":=").Id("srv").Assert(jen.Id("ResponseReleaser")), jen.Id("ok")).Block(
				jen.Id("r").Dot("ReleaseResponse").Call(jen.Id("value")),
			),
			jen.If(jen.Id("err").Op("!=").Nil()).Block(
				jen.Return(jen.Id("alloc").Dot("Place").Call(jen.Id("sdkResultError").Call(g.newError("SERIALIZATION", jen.Id("op"), jen.Lit("cannot encode the response: ").Op("+").Id("err").Dot("Error").Call())))),
			),
			jen.Return(jen.Id("out")),
		))

	// sdkUnknownMethod
	g.add(g.decl("sdkUnknownMethod")+` is the Result of a call of a method id the service does not have.`,
		jen.Func().Id("sdkUnknownMethod").Params(jen.Id("service").String(), jen.Id("methodID").Uint32()).Index().Byte().Block(
			jen.Return(jen.Id("sdkResultError").Call(g.newError("INVALID_ARGUMENT", jen.Id("service"),
				jen.Qual(fmtPkg, "Sprintf").Call(jen.Lit("unknown method id %d of service %s"), jen.Id("methodID"), jen.Id("service"))))),
		))

	// sdkDecodeRequest
	g.add(g.decl("sdkDecodeRequest")+` decodes the request of method op; a request that does not decode is the
caller's fault (`+g.em.Codes["INVALID_ARGUMENT"].GoIdent.GoName+`).`,
		jen.Func().Id("sdkDecodeRequest").Params(jen.Id("op").String(), jen.Id("req").Index().Byte(), jen.Id("m").Qual(protoPkg, "Message")).Error().Block(
			jen.If(jen.Id("err").Op(":=").Qual(protoPkg, "Unmarshal").Call(jen.Id("req"), jen.Id("m")), jen.Id("err").Op("!=").Nil()).Block(
				jen.Return(g.newError("INVALID_ARGUMENT", jen.Id("op"), jen.Qual(fmtPkg, "Sprintf").Call(jen.Lit("cannot decode the request %s: %v"),
					jen.Id("m").Dot("ProtoReflect").Call().Dot("Descriptor").Call().Dot("Name").Call(), jen.Id("err")))),
			),
			jen.Return(jen.Nil()),
		))

	// sdkNotImplemented
	g.add(g.decl("sdkNotImplemented")+` is the error of a call of an optional method the implementation lacks.`,
		jen.Func().Id("sdkNotImplemented").Params(jen.List(jen.Id("service"), jen.Id("method"), jen.Id("capability")).String()).Error().Block(
			jen.Return(g.newError("INVALID_ARGUMENT", jen.Id("method"), jen.Qual(fmtPkg, "Sprintf").Call(
				jen.Lit("this %s implementation does not offer the optional %s capability (%s.%s)"), jen.Id("service"), jen.Id("capability"), jen.Id("service"), jen.Id("method")))),
		))

	// sdkInvoke
	g.add(g.decl("sdkInvoke")+` is the body of every client method: encode req, call method id through
call, decode the Result into resp (nil for Empty). The Result's error is returned as
an *`+errName+` (one without a code as `+g.em.Codes["INTERNAL"].GoIdent.GoName+`); a transport error
unchanged.`,
		jen.Func().Id("sdkInvoke").Params(
			jen.Id("ctx").Qual(ctxPkg, "Context"), jen.Id("call").Id("CallFunc"), jen.Id("id").Uint32(), jen.Id("op").String(),
			jen.List(jen.Id("req"), jen.Id("resp")).Qual(protoPkg, "Message"),
		).Error().Block(
			jen.List(jen.Id("in"), jen.Id("err")).Op(":=").Qual(protoPkg, "Marshal").Call(jen.Id("req")),
			jen.If(jen.Id("err").Op("!=").Nil()).Block(
				jen.Return(g.newError("SERIALIZATION", jen.Id("op"), jen.Lit("cannot encode the request: ").Op("+").Id("err").Dot("Error").Call())),
			),
			jen.List(jen.Id("raw"), jen.Id("err")).Op(":=").Id("call").Call(jen.Id("ctx"), jen.Id("id"), jen.Id("in")),
			jen.If(jen.Id("err").Op("!=").Nil()).Block(jen.Return(jen.Id("err"))),
			jen.Var().Id("res").Add(resT),
			jen.If(jen.Id("err").Op(":=").Qual(protoPkg, "Unmarshal").Call(jen.Id("raw"), jen.Op("&").Id("res")), jen.Id("err").Op("!=").Nil()).Block(
				jen.Return(g.newError("DESERIALIZATION", jen.Id("op"), jen.Lit("cannot decode the result: ").Op("+").Id("err").Dot("Error").Call())),
			),
			jen.Switch(jen.Id("r").Op(":=").Id("res").Dot(oneof).Assert(jen.Type())).Block(
				jen.Case(jen.Op("*").Add(errWrap)).Block(
					jen.If(jen.Id("r").Dot(em.ErrorField.Proto.GoName).Dot(codeGet).Call().Op("==").Lit(0)).Block(
						jen.Return(g.newError("INTERNAL", jen.Id("op"), jen.Lit("the result holds an error without a code: ").Op("+").Id("r").Dot(em.ErrorField.Proto.GoName).Dot(textGet).Call())),
					),
					jen.Return(jen.Id("r").Dot(em.ErrorField.Proto.GoName)),
				),
				jen.Case(jen.Op("*").Add(valueWrap)).Block(
					jen.If(jen.Id("resp").Op("==").Nil()).Block(jen.Return(jen.Nil())),
					jen.If(jen.Id("err").Op(":=").Qual(protoPkg, "Unmarshal").Call(jen.Id("r").Dot(em.Value.Proto.GoName), jen.Id("resp")), jen.Id("err").Op("!=").Nil()).Block(
						jen.Return(g.newError("DESERIALIZATION", jen.Id("op"), jen.Lit("cannot decode the response: ").Op("+").Id("err").Dot("Error").Call())),
					),
					jen.Return(jen.Nil()),
				),
			),
			jen.Return(g.newError("DESERIALIZATION", jen.Id("op"), jen.Lit("the result holds neither a value nor an error"))),
		))

	// sdkGuard
	g.add(g.decl("sdkGuard")+` runs one host method for an adapter: its error is wrapped as "<op>: <err>" and a
panic becomes a *PanicError.`,
		jen.Func().Id("sdkGuard").Params(jen.Id("op").String(), jen.Id("call").Func().Params().Error()).Params(jen.Id("err").Error()).Block(
			jen.Defer().Func().Params().Block(
				jen.If(jen.Id("v").Op(":=").Recover(), jen.Id("v").Op("!=").Nil()).Block(
					jen.Id("err").Op("=").Op("&").Id("PanicError").Values(jen.Dict{jen.Id("Op"): jen.Id("op"), jen.Id("Value"): jen.Id("v")}),
				),
			).Call(),
			jen.If(jen.Id("err").Op(":=").Id("call").Call(), jen.Id("err").Op("!=").Nil()).Block(
				jen.Return(jen.Qual(fmtPkg, "Errorf").Call(jen.Lit("%s: %w"), jen.Id("op"), jen.Id("err"))),
			),
			jen.Return(jen.Nil()),
		))
}
