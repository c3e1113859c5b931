package gogen

import (
	"fmt"

	"github.com/dave/jennifer/jen"
	"github.com/sdskit/sdskit/tools/generators/model"
)

// batch renders the batch adapter of a host service that follows the batch convention:
// <S>BatchAdapter, New<S>BatchAdapter, Validate<S>Batch, <Op>Name, ErrInvalid<S>Batch.
func (g *fileGen) batch(s *model.Service) {
	bt := s.Batch
	iface := ifaceName(s)
	batchT := msgType(bt.Message)
	batchName := bt.Message.Proto.GoIdent.GoName
	opT := msgType(bt.Op)
	opName := bt.Op.Proto.GoIdent.GoName
	adapter := g.decl(s.Name + "BatchAdapter")
	ctor := g.decl("New" + adapter)
	errInvalid := g.decl("ErrInvalid" + batchName)
	validate := g.decl("Validate" + batchName)
	nameFunc := g.decl(opName + "Name")
	noun := words(batchName) // "persistence batch"
	oneofGet := "Get" + bt.OneofProto.GoName
	opsGet := "Get" + bt.Ops.Proto.GoName

	var scopeGet string
	if bt.Scope != nil {
		scopeGet = "Get" + bt.Scope.Proto.GoName
	}

	// ErrInvalid<Batch>
	g.add(fmt.Sprintf(`%s is wrapped by every error that rejects a malformed %s
before any host call: a nil batch, an op without a case or request%s.`, errInvalid, batchName, map[bool]string{true: ", or an op of another " + scopeNoun(nullName(bt.Scope)), false: ""}[bt.Scope != nil]),
		jen.Var().Id(errInvalid).Op("=").Qual(errorsPkg, "New").Call(jen.Lit("invalid "+noun)))

	// <Op>Name
	var nameCases []jen.Code
	for _, c := range bt.Cases {
		nameCases = append(nameCases, jen.Case(jen.Op("*").Add(ident(c.Field.Proto.GoIdent))).Block(jen.Return(jen.Lit(c.Method.Name))))
	}
	g.add(fmt.Sprintf(`%s returns the %s method an op calls, e.g. %q ("" for an op without a case).`, nameFunc, s.Name, bt.Cases[0].Method.Name),
		jen.Func().Id(nameFunc).Params(jen.Id("op").Add(opT)).String().Block(
			jen.Switch(jen.Id("op").Dot(oneofGet).Call().Assert(jen.Type())).Block(nameCases...),
			jen.Return(jen.Lit("")),
		))

	// Validate<Batch>
	var vCases []jen.Code
	for _, c := range bt.Cases {
		req := jen.Id("o").Dot(c.Field.Proto.GoName)
		stmts := []jen.Code{
			jen.List(jen.Id("name"), jen.Id("ok")).Op("=").List(jen.Lit(c.Method.Name), req.Clone().Op("!=").Nil()),
		}
		if bt.Scope != nil {
			stmts = append(stmts, jen.Id("scope").Op("=").Add(req.Clone()).Dot("Get"+c.Scope.Proto.GoName).Call())
		}
		vCases = append(vCases, jen.Case(jen.Op("*").Add(ident(c.Field.Proto.GoIdent))).Block(stmts...))
	}
	vCases = append(vCases, jen.Default().Block(
		jen.Return(jen.Qual(fmtPkg, "Errorf").Call(jen.Lit("%w: op %d: empty op (no operation set)"), jen.Id(errInvalid), jen.Id("i"))),
	))
	loopBody := []jen.Code{
		jen.Var().Id("name").String(),
		jen.Var().Id("ok").Bool(),
	}
	if bt.Scope != nil {
		loopBody = append(loopBody, jen.Var().Id("scope").String())
	}
	loopBody = append(loopBody,
		jen.Switch(jen.Id("o").Op(":=").Id("op").Dot(oneofGet).Call().Assert(jen.Type())).Block(vCases...),
		jen.If(jen.Op("!").Id("ok")).Block(
			jen.Return(jen.Qual(fmtPkg, "Errorf").Call(jen.Lit("%w: op %d: %s: nil request"), jen.Id(errInvalid), jen.Id("i"), jen.Id("name"))),
		),
	)
	if bt.Scope != nil {
		f := bt.Scope.Name
		loopBody = append(loopBody,
			jen.If(jen.Id("scope").Op("!=").Id("batch").Dot(scopeGet).Call()).Block(
				jen.Return(jen.Qual(fmtPkg, "Errorf").Call(jen.Lit("%w: op %d: %s: "+f+" %q does not match the batch's "+f+" %q"),
					jen.Id(errInvalid), jen.Id("i"), jen.Id("name"), jen.Id("scope"), jen.Id("batch").Dot(scopeGet).Call())),
			),
		)
	}
	vdoc := fmt.Sprintf(`%s checks the shape of a batch before any of it is applied: the batch is
not nil, and every op has a case and a request`, validate)
	if bt.Scope != nil {
		vdoc += fmt.Sprintf(" of the batch's %s", bt.Scope.Name)
	}
	vdoc += fmt.Sprintf(". Every error wraps %s.", errInvalid)
	g.add(vdoc, jen.Func().Id(validate).Params(jen.Id("batch").Add(batchT)).Error().Block(
		jen.If(jen.Id("batch").Op("==").Nil()).Block(jen.Return(jen.Qual(fmtPkg, "Errorf").Call(jen.Lit("%w: nil batch"), jen.Id(errInvalid)))),
		jen.For(jen.List(jen.Id("i"), jen.Id("op")).Op(":=").Range().Id("batch").Dot(opsGet).Call()).Block(loopBody...),
		jen.Return(jen.Nil()),
	))

	// The adapter type.
	tx := bt.Transactions
	var txIface string
	fields := []jen.Code{jen.Id("p").Id(iface)}
	if tx != nil {
		txIface = groupIface(s, tx.Group)
		fields = append(fields, jen.Id("tx").Id(txIface).Comment("nil when p lacks the capability"))
	}
	fields = append(fields,
		jen.Id("beforeApply").Func().Params(batchT).Error(),
	)
	var snapT *jen.Statement
	if bt.Load != nil {
		snapT = msgType(bt.Load.Output)
		fields = append(fields, jen.Id("afterLoad").Func().Params(snapT).Error())
	}
	adoc := fmt.Sprintf(`%s applies %s messages through the typed methods of a %s: the
ops of a batch become the calls of their methods, in order`, adapter, batchName, iface)
	if tx != nil {
		adoc += fmt.Sprintf(`, inside %s.Begin and
Commit when the %s also implements %s, with Rollback on the first error`, txIface, iface, txIface)
	}
	adoc += `.
An error of a host method is wrapped as "<Method>: <error>" and a panic in one becomes
a *PanicError.`
	if bt.Load != nil {
		adoc += fmt.Sprintf(` Load reads through %s. Together they make a %s a
backend of the core (store.Backend).`, bt.Load.Name, iface)
	}
	if tx == nil {
		adoc += "\nWithout transactions a failed batch may be left partially applied."
	} else {
		adoc += fmt.Sprintf(`
Without %s a failed batch may be left partially applied (the writes before the
failing one stay): such a host is only crash-safe if it is itself atomic.`, txIface)
	}
	g.add(adoc, jen.Type().Id(adapter).Struct(fields...))

	// Constructor.
	ctorBody := []jen.Code{
		jen.If(jen.Id("p").Op("==").Nil()).Block(jen.Panic(jen.Lit(string(g.f.Proto.GoPackageName) + ": " + ctor + "(nil)"))),
	}
	if tx != nil {
		ctorBody = append(ctorBody,
			jen.List(jen.Id("tx"), jen.Id("_")).Op(":=").Id("p").Assert(jen.Id(txIface)),
			jen.Return(jen.Op("&").Id(adapter).Values(jen.Dict{jen.Id("p"): jen.Id("p"), jen.Id("tx"): jen.Id("tx")})),
		)
	} else {
		ctorBody = append(ctorBody, jen.Return(jen.Op("&").Id(adapter).Values(jen.Dict{jen.Id("p"): jen.Id("p")})))
	}
	cdoc := fmt.Sprintf("%s returns the %s of p", ctor, adapter)
	if tx != nil {
		cdoc += fmt.Sprintf(", transactional when p implements %s", txIface)
	}
	g.add(cdoc+". It panics on a nil p.", jen.Func().Id(ctor).Params(jen.Id("p").Id(iface)).Op("*").Id(adapter).Block(ctorBody...))

	// WithHooks.
	hookParams := []jen.Code{jen.Id("beforeApply").Func().Params(batchT).Error()}
	hookSet := []jen.Code{jen.Id("c").Op(":=").Op("*").Id("a"), jen.Id("c").Dot("beforeApply").Op("=").Id("beforeApply")}
	hdoc := fmt.Sprintf(`WithHooks returns a copy of the adapter with checks of the embedding layer:
beforeApply runs on every batch after %s and before any host call (its
error rejects the batch whole)`, validate)
	if bt.Load != nil {
		hookParams = append(hookParams, jen.Id("afterLoad").Func().Params(snapT).Error())
		hookSet = append(hookSet, jen.Id("c").Dot("afterLoad").Op("=").Id("afterLoad"))
		hdoc += "; afterLoad runs on every loaded " + bt.Load.Output.Proto.GoIdent.GoName + " and may\nnormalise it in place (its error fails the Load)"
	}
	hdoc += ". Nil hooks are skipped."
	g.add(hdoc, jen.Func().Params(jen.Id("a").Op("*").Id(adapter)).Id("WithHooks").Params(hookParams...).Op("*").Id(adapter).Block(
		append(hookSet, jen.Return(jen.Op("&").Id("c")))...))

	// Apply.
	scopeOf := func(fd *model.Field) jen.Dict {
		if fd == nil {
			return jen.Dict{}
		}
		return jen.Dict{jen.Id(fd.Proto.GoName): jen.Id("batch").Dot(scopeGet).Call()}
	}
	applyBody := []jen.Code{
		jen.If(jen.Id("err").Op(":=").Id("ctx").Dot("Err").Call(), jen.Id("err").Op("!=").Nil()).Block(
			jen.Return(jen.Qual(fmtPkg, "Errorf").Call(jen.Lit(lowerFirst(words(s.Name))+": apply: %w"), jen.Id("err")))),
		jen.If(jen.Id("err").Op(":=").Id(validate).Call(jen.Id("batch")), jen.Id("err").Op("!=").Nil()).Block(jen.Return(jen.Id("err"))),
		jen.If(jen.Id("a").Dot("beforeApply").Op("!=").Nil()).Block(
			jen.If(jen.Id("err").Op(":=").Id("a").Dot("beforeApply").Call(jen.Id("batch")), jen.Id("err").Op("!=").Nil()).Block(jen.Return(jen.Id("err")))),
		jen.If(jen.Len(jen.Id("batch").Dot(opsGet).Call()).Op("==").Lit(0)).Block(jen.Return(jen.Nil())),
	}
	if tx != nil {
		applyBody = append(applyBody,
			jen.If(jen.Id("a").Dot("tx").Op("!=").Nil()).Block(
				jen.If(jen.Id("err").Op(":=").Id("sdkGuard").Call(jen.Lit(tx.Begin.Name), jen.Func().Params().Error().Block(
					jen.Return(jen.Id("a").Dot("tx").Dot(tx.Begin.Name).Call(jen.Id("ctx"), jen.Op("&").Add(ident(tx.Begin.Input.Proto.GoIdent)).Values(scopeOf(tx.BeginScope)))),
				)), jen.Id("err").Op("!=").Nil()).Block(jen.Return(jen.Id("err"))),
			))
	}
	onErr := []jen.Code{}
	if tx != nil {
		onErr = append(onErr, jen.If(jen.Id("a").Dot("tx").Op("!=").Nil()).Block(
			jen.Comment("Roll back even when ctx is what failed the op."),
			jen.Id("rbCtx").Op(":=").Qual(ctxPkg, "WithoutCancel").Call(jen.Id("ctx")),
			jen.If(jen.Id("rbErr").Op(":=").Id("sdkGuard").Call(jen.Lit(tx.Rollback.Name), jen.Func().Params().Error().Block(
				jen.Return(jen.Id("a").Dot("tx").Dot(tx.Rollback.Name).Call(jen.Id("rbCtx"), jen.Op("&").Add(ident(tx.Rollback.Input.Proto.GoIdent)).Values(scopeOf(tx.RollbackScope)))),
			)), jen.Id("rbErr").Op("!=").Nil()).Block(jen.Return(jen.Qual(errorsPkg, "Join").Call(jen.Id("err"), jen.Id("rbErr")))),
		))
	}
	onErr = append(onErr, jen.Return(jen.Id("err")))
	applyBody = append(applyBody,
		jen.For(jen.List(jen.Id("_"), jen.Id("op")).Op(":=").Range().Id("batch").Dot(opsGet).Call()).Block(
			jen.If(jen.Id("err").Op(":=").Id("a").Dot("apply").Call(jen.Id("ctx"), jen.Id("op")), jen.Id("err").Op("!=").Nil()).Block(onErr...),
		))
	if tx != nil {
		applyBody = append(applyBody,
			jen.If(jen.Id("a").Dot("tx").Op("!=").Nil()).Block(
				jen.Return(jen.Id("sdkGuard").Call(jen.Lit(tx.Commit.Name), jen.Func().Params().Error().Block(
					jen.Return(jen.Id("a").Dot("tx").Dot(tx.Commit.Name).Call(jen.Id("ctx"), jen.Op("&").Add(ident(tx.Commit.Input.Proto.GoIdent)).Values(scopeOf(tx.CommitScope)))),
				))),
			))
	}
	applyBody = append(applyBody, jen.Return(jen.Nil()))
	apdoc := fmt.Sprintf(`Apply makes the typed calls of batch's ops in order and stops at the first error.
A done ctx, or a batch that %s or the beforeApply hook rejects, stops
it before any host call; an empty batch makes no call.`, validate)
	if tx != nil {
		apdoc += fmt.Sprintf(` With %s the calls run
between Begin and Commit, the first error is followed by Rollback (with ctx's values
but without its cancellation), and a failed Rollback is joined to that error.`, txIface)
	}
	g.add(apdoc, jen.Func().Params(jen.Id("a").Op("*").Id(adapter)).Id("Apply").Params(jen.Id("ctx").Qual(ctxPkg, "Context"), jen.Id("batch").Add(batchT)).Error().Block(applyBody...))

	// apply (one op).
	var callCases []jen.Code
	for _, c := range bt.Cases {
		callCases = append(callCases, jen.Case(jen.Op("*").Add(ident(c.Field.Proto.GoIdent))).Block(
			jen.Return(jen.Id("sdkGuard").Call(jen.Lit(c.Method.Name), jen.Func().Params().Error().Block(
				jen.Return(jen.Id("a").Dot("p").Dot(c.Method.Name).Call(jen.Id("ctx"), jen.Id("o").Dot(c.Field.Proto.GoName))),
			))),
		))
	}
	g.add("apply makes the typed call of one validated op.",
		jen.Func().Params(jen.Id("a").Op("*").Id(adapter)).Id("apply").Params(jen.Id("ctx").Qual(ctxPkg, "Context"), jen.Id("op").Add(opT)).Error().Block(
			jen.Switch(jen.Id("o").Op(":=").Id("op").Dot(oneofGet).Call().Assert(jen.Type())).Block(callCases...),
			jen.Return(jen.Qual(fmtPkg, "Errorf").Call(jen.Lit("%w: empty op"), jen.Id(errInvalid))),
		))

	// Load.
	if bt.Load == nil {
		return
	}
	ld := bt.Load
	param := paramName(bt.Scope.Name)
	outName := ld.Output.Proto.GoIdent.GoName
	loadBody := []jen.Code{
		jen.If(jen.Id("err").Op(":=").Id("ctx").Dot("Err").Call(), jen.Id("err").Op("!=").Nil()).Block(
			jen.Return(jen.Nil(), jen.Qual(fmtPkg, "Errorf").Call(jen.Lit(lowerFirst(words(s.Name))+": load: %w"), jen.Id("err")))),
		jen.Var().Id("out").Add(snapT),
		jen.Id("err").Op(":=").Id("sdkGuard").Call(jen.Lit(ld.Name), jen.Func().Params().Error().Block(
			jen.Var().Id("err").Error(),
			jen.List(jen.Id("out"), jen.Id("err")).Op("=").Id("a").Dot("p").Dot(ld.Name).Call(jen.Id("ctx"),
				jen.Op("&").Add(ident(ld.Input.Proto.GoIdent)).Values(jen.Dict{jen.Id(bt.LoadScope.Proto.GoName): jen.Id(param)})),
			jen.Return(jen.Id("err")),
		)),
		jen.If(jen.Id("err").Op("!=").Nil()).Block(jen.Return(jen.Nil(), jen.Id("err"))),
	}
	ldoc := fmt.Sprintf(`Load calls %s for %s; ctx being done stops it before the call. A nil
%s counts as an empty one`, ld.Name, param, outName)
	if os := bt.LoadOutputScope; os != nil {
		get := "Get" + os.Proto.GoName
		loadBody = append(loadBody,
			jen.If(jen.Id("out").Op("==").Nil()).Block(jen.Id("out").Op("=").Op("&").Add(ident(ld.Output.Proto.GoIdent)).Values(jen.Dict{jen.Id(os.Proto.GoName): jen.Id(param)})),
			jen.Switch(jen.Id("got").Op(":=").Id("out").Dot(get).Call(), jen.Id("got")).Block(
				jen.Case(jen.Id(param)),
				jen.Case(jen.Lit("")).Block(jen.Id("out").Dot(os.Proto.GoName).Op("=").Id(param)),
				jen.Default().Block(jen.Return(jen.Nil(), jen.Qual(fmtPkg, "Errorf").Call(
					jen.Lit(fmt.Sprintf("%s: returned the %s of %s %%q instead of %%q", ld.Name, lastWord(outName), scopeNoun(bt.Scope.Name))), jen.Id("got"), jen.Id(param)))),
			),
		)
		ldoc += fmt.Sprintf(", an empty %s is filled in, and another %s's is an error", os.Name, scopeNoun(bt.Scope.Name))
	} else {
		loadBody = append(loadBody,
			jen.If(jen.Id("out").Op("==").Nil()).Block(jen.Id("out").Op("=").New(ident(ld.Output.Proto.GoIdent))))
	}
	loadBody = append(loadBody,
		jen.If(jen.Id("a").Dot("afterLoad").Op("!=").Nil()).Block(
			jen.If(jen.Id("err").Op(":=").Id("a").Dot("afterLoad").Call(jen.Id("out")), jen.Id("err").Op("!=").Nil()).Block(jen.Return(jen.Nil(), jen.Id("err")))),
		jen.Return(jen.Id("out"), jen.Nil()),
	)
	ldoc += ". Load never opens a transaction."
	g.add(ldoc, jen.Func().Params(jen.Id("a").Op("*").Id(adapter)).Id("Load").Params(jen.Id("ctx").Qual(ctxPkg, "Context"), jen.Id(param).String()).Params(snapT, jen.Error()).Block(loadBody...))
}

// nullName returns a field's name ("" for nil).
func nullName(f *model.Field) string {
	if f == nil {
		return ""
	}
	return f.Name
}
