package tsgen

import (
	"fmt"

	"github.com/sdskit/sdskit/tools/generators/model"
)

// batch writes, for a host service following the batch convention, the batch adapter:
// apply<S>Batch (a batch → the typed calls, inside the Transactions capability when the
// implementation has it) and dispatch<S>Batch (the same from encoded bytes to an
// encoded Result), mirroring the Go generator's <S>BatchAdapter.
func (g *fileGen) batch(s *model.Service) {
	bt := s.Batch
	apply := g.decl("apply" + s.Name + "Batch")
	dispatch := g.decl("dispatch" + s.Name + "Batch")
	opName := g.decl(lowerFirst(bt.Op.Name) + "Name")
	batchT, batchSchema := g.msgType(bt.Message), g.schema(bt.Message)
	opT := g.msgType(bt.Op)
	errorCode := g.enumRef(g.em.CodeEnum)
	result := g.rt("Result", true)
	sdsError := g.rt("SdsError", false)
	oneof := localName(bt.Oneof)
	opsField := localName(bt.Ops.Name)

	// <op>Name
	g.doc("", fmt.Sprintf("%s returns the %s method an op calls, e.g. %q (\"\" for an op without a case).", opName, s.Name, bt.Cases[0].Method.Name))
	g.p("export function %s(op: %s): string {", opName, opT)
	g.p("  switch (op.%s.case) {", oneof)
	for _, c := range bt.Cases {
		g.p("    case %q:", localName(c.Field.Name))
		g.p("      return %q;", c.Method.Name)
	}
	g.p("    default:")
	g.p("      return \"\";")
	g.p("  }")
	g.p("}")
	g.p("")

	doc := fmt.Sprintf("%s applies a %s to impl: one typed call per op, in order, stopping at\nthe first failure.", apply, bt.Message.Name)
	if bt.Transactions != nil {
		tx := s.Name + bt.Transactions.Group.Name
		doc += fmt.Sprintf("\nWhen impl implements %s the calls run between %s and %s,\nand %s follows a failing op.",
			tx, methodName(bt.Transactions.Begin), methodName(bt.Transactions.Commit), methodName(bt.Transactions.Rollback))
	}
	if bt.Scope != nil {
		doc += fmt.Sprintf("\nAn op whose %s differs from the batch's is refused before any call.", bt.Scope.Name)
	}
	doc += "\nA method that throws, rejects or answers something other than a Result fails\nwith thrownCode (INTERNAL by default). An empty batch makes no call."
	g.doc("", doc)
	g.p("export async function %s(impl: %s, batch: %s, thrownCode: %s = %s): Promise<%s<void>> {", apply, s.Name, batchT, errorCode, g.codeRef("INTERNAL"), result)
	g.p("  const run = async (op: string, f: () => unknown): Promise<%s<void>> => {", result)
	g.p("    try {")
	g.p("      const r = (await f()) as %s<unknown> | undefined;", result)
	g.p("      if (typeof r !== \"object\" || r === null || typeof r.ok !== \"boolean\") {")
	g.p("        return %s(new %s(thrownCode, \"the host method answered \" + String(r) + \", not a Result\", op));", g.rt("err", false), sdsError)
	g.p("      }")
	g.p("      return r.ok ? %s() : %s(%s.from(r.error, thrownCode, op));", g.rt("ok", false), g.rt("err", false), sdsError)
	g.p("    } catch (e) {")
	g.p("      return %s(%s.from(e, thrownCode, op));", g.rt("err", false), sdsError)
	g.p("    }")
	g.p("  };")
	g.p("  const ops = batch.%s;", opsField)
	if bt.Scope != nil {
		scope := localName(bt.Scope.Name)
		g.p("  for (const [i, op] of ops.entries()) {")
		g.p("    const c = op.%s;", oneof)
		g.p("    if (c.case === undefined) {")
		g.p("      return %s(%s, `op ${i}: empty op (no operation set)`, %q);", g.rt("fail", false), g.codeRef("INVALID_ARGUMENT"), bt.Message.Name)
		g.p("    }")
		g.p("    if (c.value.%s !== batch.%s) {", localName(bt.Cases[0].Scope.Name), scope)
		g.p("      return %s(%s, `op ${i} (${%s(op)}) is for %s ${JSON.stringify(c.value.%s)}, not the batch's ${JSON.stringify(batch.%s)}`, %q);",
			g.rt("fail", false), g.codeRef("INVALID_ARGUMENT"), opName, bt.Scope.Name, localName(bt.Cases[0].Scope.Name), scope, bt.Message.Name)
		g.p("    }")
		g.p("  }")
	}
	g.p("  if (ops.length === 0) {")
	g.p("    return %s();", g.rt("ok", false))
	g.p("  }")
	if bt.Transactions != nil {
		tx := bt.Transactions
		iface := s.Name + tx.Group.Name
		g.p("  const tx = %s(impl) ? impl : undefined;", "implements"+iface)
		scopeInit := func(m *model.Method, f *model.Field) string {
			if f == nil || bt.Scope == nil {
				return "{}"
			}
			return fmt.Sprintf("{ %s: batch.%s }", localName(f.Name), localName(bt.Scope.Name))
		}
		create := g.pb("create")
		g.p("  if (tx !== undefined) {")
		g.p("    const r = await run(%q, () => tx.%s(%s(%s, %s)));", tx.Begin.Name, methodName(tx.Begin), create, g.schema(tx.Begin.Input), scopeInit(tx.Begin, tx.BeginScope))
		g.p("    if (!r.ok) {")
		g.p("      return r;")
		g.p("    }")
		g.p("  }")
		g.p("  for (const op of ops) {")
		g.p("    const r = await run(%s(op), () => applyOne(op));", opName)
		g.p("    if (!r.ok) {")
		g.p("      if (tx !== undefined) {")
		g.p("        const rb = await run(%q, () => tx.%s(%s(%s, %s)));", tx.Rollback.Name, methodName(tx.Rollback), create, g.schema(tx.Rollback.Input), scopeInit(tx.Rollback, tx.RollbackScope))
		g.p("        if (!rb.ok) {")
		g.p("          return %s(new %s(r.error.code, r.error.detail + \"; \" + rb.error.message, r.error.op));", g.rt("err", false), sdsError)
		g.p("        }")
		g.p("      }")
		g.p("      return r;")
		g.p("    }")
		g.p("  }")
		g.p("  if (tx !== undefined) {")
		g.p("    return run(%q, () => tx.%s(%s(%s, %s)));", tx.Commit.Name, methodName(tx.Commit), create, g.schema(tx.Commit.Input), scopeInit(tx.Commit, tx.CommitScope))
		g.p("  }")
		g.p("  return %s();", g.rt("ok", false))
	} else {
		g.p("  for (const op of ops) {")
		g.p("    const r = await run(%s(op), () => applyOne(op));", opName)
		g.p("    if (!r.ok) {")
		g.p("      return r;")
		g.p("    }")
		g.p("  }")
		g.p("  return %s();", g.rt("ok", false))
	}
	g.p("")
	g.p("  function applyOne(op: %s): unknown {", opT)
	g.p("    const c = op.%s;", oneof)
	g.p("    switch (c.case) {")
	for _, c := range bt.Cases {
		g.p("      case %q:", localName(c.Field.Name))
		g.p("        return impl.%s(c.value);", methodName(c.Method))
	}
	g.p("      default:")
	g.p("        return %s(%s, \"empty op (no operation set)\", %q);", g.rt("fail", false), g.codeRef("INVALID_ARGUMENT"), bt.Message.Name)
	g.p("    }")
	g.p("  }")
	g.p("}")
	g.p("")

	g.doc("", fmt.Sprintf(`%s decodes a %s (INVALID_ARGUMENT when it does not decode), applies it
with %s and answers the encoded Result (Empty on success); it never rejects.`, dispatch, bt.Message.Name, apply))
	g.p("export function %s(impl: %s, request: Uint8Array, thrownCode: %s = %s): Promise<Uint8Array> {", dispatch, s.Name, errorCode, g.codeRef("INTERNAL"))
	g.p("  let batch: %s;", batchT)
	g.p("  try {")
	g.p("    batch = %s(%s, request);", g.pb("fromBinary"), batchSchema)
	g.p("  } catch (e) {")
	g.p("    return Promise.resolve(%s(new %s(%s, \"cannot decode the request: \" + String(e), %q)));", g.rt("encodeResultError", false), sdsError, g.codeRef("INVALID_ARGUMENT"), bt.Message.Name)
	g.p("  }")
	g.p("  return %s(impl, batch, thrownCode).then((r) => (r.ok ? %s(%s, {}) : %s(r.error)));", apply, g.rt("encodeResultValue", false), g.schema(emptyOutput(s)), g.rt("encodeResultError", false))
	g.p("}")
	g.p("")
}

// emptyOutput is the Empty message of a service's batch methods (their output).
func emptyOutput(s *model.Service) *model.Message {
	return s.Batch.Cases[0].Method.Output
}
