package gogen

import (
	"fmt"
	"strings"

	"github.com/dave/jennifer/jen"
	"github.com/sdskit/sdskit/tools/generators/model"
)

// ifaceName is the Go interface of a service: <S>Server for core services (the SDKs
// are its clients), <S> for host services (the application implements it).
func ifaceName(s *model.Service) string {
	if s.Role == model.RoleCore {
		return s.Name + "Server"
	}
	return s.Name
}

// groupIface is the Go interface of an optional capability: <S><Capability>.
func groupIface(s *model.Service, g *model.Group) string { return s.Name + g.Name }

// methodIDConst is the constant holding a method's id: <S>_<M>_MethodID.
func methodIDConst(m *model.Method) string { return m.Service.Name + "_" + m.Name + "_MethodID" }

// invokeFunc is the unexported function of a method's dispatch-table entry.
func invokeFunc(m *model.Method) string { return lowerFirst(m.Service.Name) + m.Name + "Invoke" }

// signature returns the parameters and results of a method's Go signature.
func signature(m *model.Method) (params []jen.Code, results []jen.Code) {
	params = []jen.Code{jen.Id("ctx").Qual(ctxPkg, "Context"), jen.Id("req").Add(msgType(m.Input))}
	if m.ReturnsEmpty {
		return params, []jen.Code{jen.Error()}
	}
	return params, []jen.Code{msgType(m.Output), jen.Error()}
}

// methodDoc is the doc comment of a method in an interface.
func methodDoc(m *model.Method) string {
	return goDoc(m.Name, m.Comment, fmt.Sprintf("%s implements %s.%s.", m.Name, m.Service.Name, m.Name))
}

// service renders everything of one service except its batch adapter.
func (g *fileGen) service(s *model.Service) {
	iface := g.decl(ifaceName(s))
	what := "host-implemented: the application implements it and the core calls it"
	if s.Role == model.RoleCore {
		what = "core-implemented: the Go core implements it and the SDKs call it"
	}

	// Names.
	g.add(fmt.Sprintf("%s is the full name of the %s service.", g.decl(s.Name+"_ServiceName"), s.Name),
		jen.Const().Id(s.Name+"_ServiceName").Op("=").Lit(s.FullName))
	var ids []jen.Code
	for _, m := range s.Methods {
		ids = append(ids, jen.Comment(fmt.Sprintf("%s is the method id of %s.%s.", g.decl(methodIDConst(m)), s.Name, m.Name)),
			jen.Id(methodIDConst(m)).Uint32().Op("=").Lit(int(m.ID)))
	}
	g.add(fmt.Sprintf("Method ids of %s (its method_id options): stable across releases, never reused.", s.Name),
		jen.Const().Defs(ids...))

	// Interfaces.
	var doc string
	if s.Role == model.RoleCore {
		doc = fmt.Sprintf("%s is the %s service, %s.", iface, s.Name, what)
		if s.Comment != "" {
			doc += "\n" + s.Comment
		}
	} else {
		doc = goDoc(iface, s.Comment, fmt.Sprintf("%s is the %s service.", iface, s.Name)) + "\nIt is " + what + "."
	}
	if len(s.Groups) > 0 {
		var names []string
		for _, gr := range s.Groups {
			names = append(names, groupIface(s, gr))
		}
		doc += fmt.Sprintf("\nAn implementation may also offer the optional %s.", strings.Join(names, ", "))
	}
	g.add(doc, jen.Type().Id(iface).Interface(g.ifaceMethods(s.Required)...))
	for _, gr := range s.Groups {
		name := g.decl(groupIface(s, gr))
		g.add(fmt.Sprintf(`%s is the optional %s capability of %s: an implementation of %s
may also implement it, with all of its methods. Generated adapters detect it with a
type assertion.`, name, gr.Name, s.Name, iface), jen.Type().Id(name).Interface(g.ifaceMethods(gr.Methods)...))
	}

	// Dispatch table.
	for _, m := range s.Methods {
		g.invoke(s, m)
	}
	table := g.decl(s.Name + "Methods")
	var entries []jen.Code
	for _, m := range s.Methods {
		d := jen.Dict{
			jen.Id("ID"):     jen.Id(methodIDConst(m)),
			jen.Id("Name"):   jen.Lit(m.Name),
			jen.Id("Invoke"): jen.Id(invokeFunc(m)),
		}
		if m.Optional {
			d[jen.Id("Optional")] = jen.True()
		}
		entries = append(entries, jen.Values(d))
	}
	descT := jen.Id("MethodDesc").Types(jen.Id(iface))
	g.add(fmt.Sprintf(`%s is the dispatch table of %s, in declaration order: for each method,
encoded request → typed call → encoded response. The C and wasm glue loop over it, so
adding an rpc never touches glue code.`, table, s.Name),
		jen.Var().Id(table).Op("=").Index().Add(descT).Values(entries...))

	lookup := g.decl("Lookup" + s.Name + "Method")
	var cases []jen.Code
	for i, m := range s.Methods {
		cases = append(cases, jen.Case(jen.Id(methodIDConst(m))).Block(jen.Return(jen.Id(table).Index(jen.Lit(i)), jen.True())))
	}
	g.add(fmt.Sprintf("%s returns the entry of %s with the given method id.", lookup, table),
		jen.Func().Id(lookup).Params(jen.Id("methodID").Uint32()).Params(jen.Id("MethodDesc").Types(jen.Id(iface)), jen.Bool()).Block(
			jen.Switch(jen.Id("methodID")).Block(cases...),
			jen.Return(jen.Id("MethodDesc").Types(jen.Id(iface)).Values(), jen.False()),
		))

	dispatch := g.decl("Dispatch" + s.Name)
	into := g.decl("Dispatch" + s.Name + "Into")
	errName := g.em.Error.Proto.GoIdent.GoName
	g.add(fmt.Sprintf(`%s calls method methodID of srv with the encoded request req and returns the
encoded Result: the encoded response, or the method's error as an %s (%sFrom). An
unknown method id or a request that does not decode gives %s, and a panic in srv
gives %s: %s never panics.`, dispatch, errName, errName,
		g.em.Codes["INVALID_ARGUMENT"].GoIdent.GoName, g.em.Codes["INTERNAL"].GoIdent.GoName, dispatch),
		jen.Func().Id(dispatch).Params(jen.Id("ctx").Qual(ctxPkg, "Context"), jen.Id("srv").Id(iface), jen.Id("methodID").Uint32(), jen.Id("req").Index().Byte()).Index().Byte().Block(
			jen.Return(jen.Id(into).Call(jen.Id("ctx"), jen.Id("srv"), jen.Id("methodID"), jen.Id("req"), jen.Nil())),
		))
	g.add(fmt.Sprintf(`%s is %s writing the Result into memory from alloc (see Alloc; the Go heap when
alloc is nil). req is not retained: it may be memory the caller reuses afterwards.`, into, dispatch),
		jen.Func().Id(into).Params(jen.Id("ctx").Qual(ctxPkg, "Context"), jen.Id("srv").Id(iface), jen.Id("methodID").Uint32(), jen.Id("req").Index().Byte(), jen.Id("alloc").Id("Alloc")).Index().Byte().Block(
			jen.List(jen.Id("m"), jen.Id("ok")).Op(":=").Id(lookup).Call(jen.Id("methodID")),
			jen.If(jen.Op("!").Id("ok")).Block(jen.Return(jen.Id("alloc").Dot("Place").Call(jen.Id("sdkUnknownMethod").Call(jen.Lit(s.Name), jen.Id("methodID"))))),
			jen.Return(jen.Id("sdkDispatch").Call(jen.Id("m").Dot("Name"), jen.Id("alloc"), jen.Id("srv"), jen.Func().Params().Params(jen.Qual(protoPkg, "Message"), jen.Error()).Block(
				jen.Return(jen.Id("m").Dot("Invoke").Call(jen.Id("ctx"), jen.Id("srv"), jen.Id("req"))),
			))),
		))

	// Clients.
	g.client(s, iface, s.Required, "")
	for _, gr := range s.Groups {
		g.client(s, groupIface(s, gr), gr.Methods, gr.Name)
	}
}

// ifaceMethods renders the methods of an interface.
func (g *fileGen) ifaceMethods(methods []*model.Method) []jen.Code {
	var out []jen.Code
	for _, m := range methods {
		params, results := signature(m)
		out = append(out, docLines(methodDoc(m))...)
		out = append(out, jen.Id(m.Name).Params(params...).Params(results...))
	}
	return out
}

// invoke renders the dispatch-table function of one method.
func (g *fileGen) invoke(s *model.Service, m *model.Method) {
	name := g.decl(invokeFunc(m))
	target := jen.Id("srv")
	var body []jen.Code
	if m.Optional {
		body = append(body,
			jen.List(jen.Id("impl"), jen.Id("ok")).Op(":=").Id("srv").Assert(jen.Id(s.Name+m.Group)),
			jen.If(jen.Op("!").Id("ok")).Block(jen.Return(jen.Nil(), jen.Id("sdkNotImplemented").Call(jen.Lit(s.Name), jen.Lit(m.Name), jen.Lit(m.Group)))),
		)
		target = jen.Id("impl")
	}
	decodeErr := jen.If(jen.Id("err").Op(":=").Id("sdkDecodeRequest").Call(jen.Lit(m.Name), jen.Id("req"), jen.Id("in")), jen.Id("err").Op("!=").Nil()).Block(jen.Return(jen.Nil(), jen.Id("err")))
	body = append(body, jen.Id("in").Op(":=").New(ident(m.Input.Proto.GoIdent)))
	if dec := g.aliasingDecoder(m.Input.Proto); dec != "" {
		body = append(body, jen.If(jen.Op("!").Id(dec).Call(jen.Id("req"), jen.Id("in"))).Block(decodeErr))
	} else {
		body = append(body, decodeErr)
	}
	if m.ReturnsEmpty {
		body = append(body,
			jen.If(jen.Id("err").Op(":=").Add(target).Dot(m.Name).Call(jen.Id("ctx"), jen.Id("in")), jen.Id("err").Op("!=").Nil()).Block(jen.Return(jen.Nil(), jen.Id("err"))),
			jen.Return(jen.Nil(), jen.Nil()),
		)
	} else {
		body = append(body,
			jen.List(jen.Id("out"), jen.Id("err")).Op(":=").Add(target).Dot(m.Name).Call(jen.Id("ctx"), jen.Id("in")),
			jen.If(jen.Id("err").Op("!=").Nil()).Block(jen.Return(jen.Nil(), jen.Id("err"))),
			jen.Return(jen.Id("out"), jen.Nil()),
		)
	}
	g.add(fmt.Sprintf("%s is the Invoke of %s.%s in %sMethods.", name, s.Name, m.Name, s.Name),
		jen.Func().Id(name).Params(jen.Id("ctx").Qual(ctxPkg, "Context"), jen.Id("srv").Id(ifaceName(s)), jen.Id("req").Index().Byte()).Params(jen.Qual(protoPkg, "Message"), jen.Error()).Block(body...))
}

// client renders a client of iface (the service, or one optional capability).
func (g *fileGen) client(s *model.Service, iface string, methods []*model.Method, group string) {
	ctor := g.decl("New" + s.Name + group + "Client")
	typ := g.decl(lowerFirst(s.Name+group) + "Client")
	errName := g.em.Error.Proto.GoIdent.GoName
	doc := fmt.Sprintf(`%s returns a %s whose methods call an implementation of %s through
call: each encodes its request, sends it with the method's id and decodes the Result.
An error of the implementation comes back as an *%s; an error of call itself unchanged.`, ctor, iface, s.Name, errName)
	if group == "" && len(s.Groups) > 0 {
		doc += fmt.Sprintf(`
The client lacks the optional capabilities; to offer them too, combine it with their
clients:

	struct {
		%s
		%s
	}{%s(call), New%sClient(call)}`, iface, groupIface(s, s.Groups[0]), ctor, groupIface(s, s.Groups[0]))
	}
	g.add(doc, jen.Func().Id(ctor).Params(jen.Id("call").Id("CallFunc")).Id(iface).Block(
		jen.If(jen.Id("call").Op("==").Nil()).Block(jen.Panic(jen.Lit(string(g.f.Proto.GoPackageName)+": "+ctor+"(nil)"))),
		jen.Return(jen.Op("&").Id(typ).Values(jen.Dict{jen.Id("call"): jen.Id("call")})),
	))
	g.add(fmt.Sprintf("%s is the %s %s returns.", typ, iface, ctor), jen.Type().Id(typ).Struct(jen.Id("call").Id("CallFunc")))
	for _, m := range methods {
		params, results := signature(m)
		var body []jen.Code
		if m.ReturnsEmpty {
			body = []jen.Code{jen.Return(jen.Id("sdkInvoke").Call(jen.Id("ctx"), jen.Id("c").Dot("call"), jen.Id(methodIDConst(m)), jen.Lit(m.Name), jen.Id("req"), jen.Nil()))}
		} else {
			body = []jen.Code{
				jen.Id("out").Op(":=").New(ident(m.Output.Proto.GoIdent)),
				jen.If(jen.Id("err").Op(":=").Id("sdkInvoke").Call(jen.Id("ctx"), jen.Id("c").Dot("call"), jen.Id(methodIDConst(m)), jen.Lit(m.Name), jen.Id("req"), jen.Id("out")), jen.Id("err").Op("!=").Nil()).Block(
					jen.Return(jen.Nil(), jen.Id("err")),
				),
				jen.Return(jen.Id("out"), jen.Nil()),
			}
		}
		g.add(fmt.Sprintf("%s calls %s.%s.", m.Name, s.Name, m.Name),
			jen.Func().Params(jen.Id("c").Op("*").Id(typ)).Id(m.Name).Params(params...).Params(results...).Block(body...))
	}
}
