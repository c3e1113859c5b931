package gogen

import (
	"fmt"
	"strings"

	"github.com/dave/jennifer/jen"
)

// events renders the typed handling of the event union: <Event>Handler,
// Unimplemented<Event>Handler, Dispatch<Event> and <Event>Name.
func (g *fileGen) events() {
	ev := g.m.Events
	union := ev.Message.Proto.GoIdent.GoName
	unionT := msgType(ev.Message)
	handler := g.decl(union + "Handler")
	unimpl := g.decl("Unimplemented" + handler)
	dispatch := g.decl("Dispatch" + union)
	nameFunc := g.decl(union + "Name")
	get := "Get" + ev.OneofProto.GoName

	var methods []jen.Code
	for _, c := range ev.Cases {
		msgName := c.Message.Proto.GoIdent.GoName
		doc := fmt.Sprintf("On%s handles %s %s event.", c.Name, article(msgName), msgName)
		if rest, ok := strings.CutPrefix(c.Message.Comment, msgName+": "); ok {
			doc = fmt.Sprintf("On%s handles %s %s event: %s", c.Name, article(msgName), msgName, rest)
		} else if c.Message.Comment != "" {
			doc += "\n" + c.Message.Comment
		}
		methods = append(methods, docLines(doc)...)
		methods = append(methods, jen.Id("On"+c.Name).Params(jen.Id("ev").Add(msgType(c.Message))))
	}
	g.add(fmt.Sprintf(`%s handles the events of %s, one method per kind. The core calls it
only after the operation that produced the events committed, in their order, outside
every lock. Embed %s to handle only some kinds.`, handler, union, unimpl),
		jen.Type().Id(handler).Interface(methods...))

	g.add(fmt.Sprintf(`%s ignores every event. Embed it in an %s to implement
only the methods you need and keep compiling when kinds are added.`, unimpl, handler),
		jen.Type().Id(unimpl).Struct())
	for _, c := range ev.Cases {
		g.add(fmt.Sprintf("On%s ignores the event.", c.Name),
			jen.Func().Params(jen.Id(unimpl)).Id("On"+c.Name).Params(msgType(c.Message)).Block())
	}

	var dcases, ncases []jen.Code
	for _, c := range ev.Cases {
		wrap := ident(c.Field.Proto.GoIdent)
		dcases = append(dcases, jen.Case(jen.Op("*").Add(wrap)).Block(
			jen.If(jen.Id("e").Dot(c.Field.Proto.GoName).Op("!=").Nil()).Block(
				jen.Id("h").Dot("On"+c.Name).Call(jen.Id("e").Dot(c.Field.Proto.GoName)),
			),
		))
		ncases = append(ncases, jen.Case(jen.Op("*").Add(wrap)).Block(jen.Return(jen.Lit(c.Name))))
	}
	g.add(fmt.Sprintf(`%s calls the method of h that handles ev's kind. An empty event, one
with a nil payload, or a kind this package does not know is ignored.`, dispatch),
		jen.Func().Id(dispatch).Params(jen.Id("h").Id(handler), jen.Id("ev").Add(unionT)).Block(
			jen.Switch(jen.Id("e").Op(":=").Id("ev").Dot(get).Call().Assert(jen.Type())).Block(dcases...),
		))
	g.add(fmt.Sprintf(`%s returns the kind of ev, e.g. %q ("" for an empty event).`, nameFunc, ev.Cases[0].Name),
		jen.Func().Id(nameFunc).Params(jen.Id("ev").Add(unionT)).String().Block(
			jen.Switch(jen.Id("ev").Dot(get).Call().Assert(jen.Type())).Block(ncases...),
			jen.Return(jen.Lit("")),
		))
}

// article returns "an" before a vowel, else "a".
func article(word string) string {
	if word != "" && strings.ContainsRune("AEIOUaeiou", rune(word[0])) {
		return "an"
	}
	return "a"
}
