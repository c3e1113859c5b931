package gogen

import (
	"github.com/dave/jennifer/jen"
	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// aliasingDecoder renders, once per package, the decoder of a request message made only
// of singular string and bytes fields (no presence, no oneof) and returns its name; ""
// when msg has other fields. The decoder reads the encoding a conforming encoder writes
// (known fields, length-delimited, valid UTF-8 in strings) with the bytes fields
// aliasing the input instead of copied — a received message (~19 KB) is not copied
// before the core decodes it — and reports false for anything else, which
// proto.Unmarshal then decodes with its exact results and errors.
func (g *fileGen) aliasingDecoder(msg *protogen.Message) string {
	var cases []jen.Code
	for _, f := range msg.Fields {
		d := f.Desc
		if d.Cardinality() != protoreflect.Optional || d.HasPresence() || d.ContainingOneof() != nil {
			return ""
		}
		var set jen.Code
		switch d.Kind() {
		case protoreflect.BytesKind:
			// As proto.Unmarshal: an empty field is nil. The capacity ends with the
			// field, so that appending to it cannot overwrite the rest of b.
			set = jen.Id("m").Dot(f.GoName).Op("=").Nil().Line().
				If(jen.Len(jen.Id("v")).Op(">").Lit(0)).Block(jen.Id("m").Dot(f.GoName).Op("=").Id("v").Index(jen.Empty(), jen.Len(jen.Id("v")), jen.Len(jen.Id("v"))))
		case protoreflect.StringKind:
			set = jen.If(jen.Op("!").Qual("unicode/utf8", "Valid").Call(jen.Id("v"))).Block(jen.Return(jen.False())).Line().
				Id("m").Dot(f.GoName).Op("=").String().Call(jen.Id("v"))
		default:
			return ""
		}
		cases = append(cases, jen.Case(jen.Lit(int(d.Number()))).Block(set))
	}
	name := "sdkDecode" + msg.GoIdent.GoName
	if _, done := g.st.decls[name]; done {
		return name
	}
	cases = append(cases, jen.Default().Block(jen.Return(jen.False())))
	body := []jen.Code{jen.Return(jen.Len(jen.Id("b")).Op("==").Lit(0))} // a message without fields
	if len(msg.Fields) > 0 {
		body = []jen.Code{
			jen.For(jen.Len(jen.Id("b")).Op(">").Lit(0)).Block(
				jen.List(jen.Id("num"), jen.Id("typ"), jen.Id("n")).Op(":=").Qual(wirePkg, "ConsumeTag").Call(jen.Id("b")),
				jen.If(jen.Id("n").Op("<").Lit(0).Op("||").Id("typ").Op("!=").Qual(wirePkg, "BytesType")).Block(jen.Return(jen.False())),
				jen.List(jen.Id("v"), jen.Id("k")).Op(":=").Qual(wirePkg, "ConsumeBytes").Call(jen.Id("b").Index(jen.Id("n"), jen.Empty())),
				jen.If(jen.Id("k").Op("<").Lit(0)).Block(jen.Return(jen.False())),
				jen.Id("b").Op("=").Id("b").Index(jen.Id("n").Op("+").Id("k"), jen.Empty()),
				jen.Switch(jen.Id("num")).Block(cases...),
			),
			jen.Return(jen.True()),
		}
	}
	g.add(g.decl(name)+` decodes b into m, which is empty, with m's bytes fields aliasing b; false
when b is not the plain encoding of known fields (proto.Unmarshal then decodes it).`,
		jen.Func().Id(name).Params(jen.Id("b").Index().Byte(), jen.Id("m").Op("*").Add(ident(msg.GoIdent))).Bool().Block(body...))
	return name
}
