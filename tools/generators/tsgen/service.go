package tsgen

import (
	"fmt"
	"strings"

	"github.com/sdskit/sdskit/tools/generators/model"
)

// methodName is the TypeScript method of an rpc: EnsureChannel → ensureChannel.
func methodName(m *model.Method) string { return lowerFirst(m.Name) }

// methodDoc is an rpc's doc comment with its method id.
func methodDoc(m *model.Method) string {
	c := m.Comment
	if c == "" {
		c = m.Name + "."
	}
	return fmt.Sprintf("%s\n\nMethod id %d.", c, m.ID)
}

// ids writes <S>ServiceName and the <S>Method id table.
func (g *fileGen) ids(s *model.Service) {
	g.doc("", fmt.Sprintf("%sServiceName is the fully qualified name of service %s.", s.Name, s.Name))
	g.p("export const %s = %q;", g.decl(s.Name+"ServiceName"), s.FullName)
	g.p("")
	g.doc("", fmt.Sprintf("%sMethod holds the stable method ids of service %s (never reused or changed).", s.Name, s.Name))
	g.p("export const %s = {", g.decl(s.Name+"Method"))
	for _, m := range s.Methods {
		g.p("  %s: %d,", m.Name, m.ID)
	}
	g.p("} as const;")
	g.p("")
}

// coreService writes the typed class of a core service: one method per rpc calling the
// core over a CallFunc.
func (g *fileGen) coreService(s *model.Service) {
	g.ids(s)
	callFunc, result := g.rt("CallFunc", true), g.rt("Result", true)
	initShape := g.pbType("MessageInitShape")
	comment := s.Comment
	if comment == "" {
		comment = s.Name + " is a core service."
	}
	g.doc("", comment+"\n\nEach method encodes its request, calls the core by method id over the\nCallFunc and resolves with a Result; it never rejects.")
	g.p("export class %s {", g.decl(s.Name))
	g.doc("  ", "The transport into the core.")
	g.p("  protected readonly call: %s;", callFunc)
	g.p("")
	g.p("  constructor(call: %s) {", callFunc)
	g.p("    this.call = call;")
	g.p("  }")
	for _, m := range s.Methods {
		g.p("")
		g.doc("  ", methodDoc(m))
		def := ""
		if len(m.Input.Proto.Fields) == 0 {
			def = " = {}"
		}
		in := fmt.Sprintf("%s<typeof %s>", initShape, g.schema(m.Input))
		if m.ReturnsEmpty {
			g.p("  %s(request: %s%s): Promise<%s<void>> {", methodName(m), in, def, result)
			g.p("    return %s(this.call, %d, %q, %s, %s, request);", g.rt("invokeCoreVoid", false), m.ID, m.Name, g.schema(m.Input), g.schema(m.Output))
		} else {
			g.p("  %s(request: %s%s): Promise<%s<%s>> {", methodName(m), in, def, result, g.msgType(m.Output))
			g.p("    return %s(this.call, %d, %q, %s, %s, request);", g.rt("invokeCore", false), m.ID, m.Name, g.schema(m.Input), g.schema(m.Output))
		}
		g.p("  }")
	}
	g.p("}")
	g.p("")
}

// hostSignature is a host method's TypeScript signature.
func (g *fileGen) hostSignature(m *model.Method) string {
	result := g.rt("Result", true)
	out := "void"
	if !m.ReturnsEmpty {
		out = fmt.Sprintf("%s<typeof %s>", g.pbType("MessageInitShape"), g.schema(m.Output))
	}
	return fmt.Sprintf("%s(request: %s): Promise<%s<%s>>", methodName(m), g.msgType(m.Input), result, out)
}

// hostService writes the interface of a host service, its capability interfaces with
// their guards, and its dispatcher.
func (g *fileGen) hostService(s *model.Service) {
	g.ids(s)
	comment := s.Comment
	if comment == "" {
		comment = s.Name + " is implemented by the host."
	}
	var note strings.Builder
	note.WriteString(comment)
	note.WriteString("\n\nEvery method answers a Result; a method that throws or rejects fails with the\ndispatcher's thrown code.")
	if len(s.Groups) > 0 {
		var names []string
		for _, grp := range s.Groups {
			names = append(names, s.Name+grp.Name)
		}
		fmt.Fprintf(&note, " Optional capabilities: %s (all methods of one or none).", strings.Join(names, ", "))
	}
	g.doc("", note.String())
	g.p("export interface %s {", g.decl(s.Name))
	for i, m := range s.Required {
		if i > 0 {
			g.p("")
		}
		g.doc("  ", methodDoc(m))
		g.p("  %s;", g.hostSignature(m))
	}
	g.p("}")
	g.p("")
	for _, grp := range s.Groups {
		iface := g.decl(s.Name + grp.Name)
		g.doc("", fmt.Sprintf("%s is the optional %s capability of %s: a host implements all of its methods or none.", iface, grp.Name, s.Name))
		g.p("export interface %s {", iface)
		for i, m := range grp.Methods {
			if i > 0 {
				g.p("")
			}
			g.doc("  ", methodDoc(m))
			g.p("  %s;", g.hostSignature(m))
		}
		g.p("}")
		g.p("")
		guard := g.decl("implements" + iface)
		g.doc("", fmt.Sprintf("%s reports whether impl implements every method of %s.", guard, iface))
		g.p("export function %s(impl: %s): impl is %s & %s {", guard, s.Name, s.Name, iface)
		g.p("  const o = impl as %s & Partial<%s>;", s.Name, iface)
		var conds []string
		for _, m := range grp.Methods {
			conds = append(conds, fmt.Sprintf("typeof o.%s === \"function\"", methodName(m)))
		}
		g.p("  return %s;", strings.Join(conds, " && "))
		g.p("}")
		g.p("")
	}

	dispatch := g.decl("dispatch" + s.Name)
	errorCode := g.enumRef(g.em.CodeEnum)
	g.doc("", fmt.Sprintf(`%s calls method methodId of impl with the encoded request and answers
the encoded Result: at once when the method answered synchronously, as a Promise
otherwise; it never throws or rejects. An unknown method id, a missing optional method
or a request that does not decode gives INVALID_ARGUMENT; a method that throws or
rejects gives thrownCode (INTERNAL by default).`, dispatch))
	g.p("export function %s(impl: %s, methodId: number, request: Uint8Array, thrownCode: %s = %s): %s {", dispatch, s.Name, errorCode, g.codeRef("INTERNAL"), g.rt("HostAnswer", true))
	if len(s.Groups) > 0 {
		var all []string
		for _, grp := range s.Groups {
			all = append(all, s.Name+grp.Name)
		}
		g.p("  const o = impl as %s & Partial<%s>;", s.Name, strings.Join(all, " & "))
	}
	g.p("  switch (methodId) {")
	for _, m := range s.Methods {
		op := m.Name
		g.p("    case %d: {", m.ID)
		invoke := fmt.Sprintf("impl.%s(r)", methodName(m))
		if m.Optional {
			invoke = "f.call(o, r)"
			g.p("      const f = o.%s;", methodName(m))
			g.p("      if (typeof f !== \"function\") {")
			g.p("        return %s(new %s(%s, %q, %q));", g.rt("encodeResultError", false), g.rt("SdsError", false), g.codeRef("INVALID_ARGUMENT"),
				fmt.Sprintf("%s.%s is not implemented (optional capability %s)", s.Name, m.Name, m.Group), op)
			g.p("      }")
		}
		g.p("      return %s(%q, %s, request, %s, thrownCode, (r) => %s);", g.rt("dispatchHostMethod", false), op, g.schema(m.Input), g.schema(m.Output), invoke)
		g.p("    }")
	}
	g.p("    default:")
	g.p("      return %s(new %s(%s, `unknown method id ${methodId} of service %s`, %q));", g.rt("encodeResultError", false), g.rt("SdsError", false), g.codeRef("INVALID_ARGUMENT"), s.FullName, s.Name)
	g.p("  }")
	g.p("}")
	g.p("")
}
