package callerauth_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"testing"
)

// TestLookupIsConstantTime reads the source of Keys.Lookup and checks the
// properties that make it take the same time whichever caller matches and
// however close a guess comes. No timing test could check this on a
// loaded machine, and every behavioural test passes with an early-return
// lookup, so the shape of the code is what is checked:
//
//   - one loop ranges over every entry (k.entries), and calls
//     subtle.ConstantTimeCompare in its body;
//   - that body has no return, break, continue or goto, and no if or
//     switch: the match is folded in with subtle.ConstantTimeSelect and
//     OR, never branched on;
//   - digests are never compared with ==, != or an Equal function.
//
// If Lookup moves or is renamed, update this test with it; do not drop it.
func TestLookupIsConstantTime(t *testing.T) {
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "keys.go", nil, 0)
	if err != nil {
		t.Fatalf("parse keys.go: %v", err)
	}
	var lookup *ast.FuncDecl
	for _, d := range file.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Name.Name == "Lookup" && fn.Recv != nil {
			lookup = fn
		}
	}
	if lookup == nil {
		t.Fatal("keys.go has no method Lookup: update this test to the new lookup function")
	}

	var loops int
	ast.Inspect(lookup.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			if name := calleeName(n); name == "bytes.Equal" || name == "slices.Equal" || name == "reflect.DeepEqual" || name == "hmac.Equal" {
				t.Errorf("%s: Lookup compares with %s; use subtle.ConstantTimeCompare over every entry", fset.Position(n.Pos()), name)
			}
		case *ast.BinaryExpr:
			if (n.Op == token.EQL || n.Op == token.NEQ) && (mentionsDigest(n.X) || mentionsDigest(n.Y)) {
				t.Errorf("%s: Lookup compares a digest with %s; use subtle.ConstantTimeCompare", fset.Position(n.Pos()), n.Op)
			}
		case *ast.RangeStmt:
			if !callsConstantTimeCompare(n.Body) {
				return true
			}
			loops++
			if sel, ok := n.X.(*ast.SelectorExpr); !ok || sel.Sel.Name != "entries" {
				t.Errorf("%s: the comparing loop ranges over %s, want every entry (k.entries)", fset.Position(n.Pos()), exprString(n.X))
			}
			ast.Inspect(n.Body, func(m ast.Node) bool {
				switch m := m.(type) {
				case *ast.ReturnStmt, *ast.BranchStmt:
					t.Errorf("%s: the comparing loop can stop early (%T): it must compare every entry", fset.Position(m.Pos()), m)
				case *ast.IfStmt, *ast.SwitchStmt:
					t.Errorf("%s: the comparing loop branches (%T) on data: fold the match in with subtle.ConstantTimeSelect", fset.Position(m.Pos()), m)
				}
				return true
			})
		}
		return true
	})
	if loops != 1 {
		t.Errorf("Lookup has %d loops calling subtle.ConstantTimeCompare, want exactly 1 over every entry", loops)
	}
}

// calleeName returns "pkg.Func" for a call of a package function, or "".
func calleeName(call *ast.CallExpr) string {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return ""
	}
	pkg, ok := sel.X.(*ast.Ident)
	if !ok {
		return ""
	}
	return pkg.Name + "." + sel.Sel.Name
}

// callsConstantTimeCompare reports whether n calls subtle.ConstantTimeCompare.
func callsConstantTimeCompare(n ast.Node) bool {
	found := false
	ast.Inspect(n, func(m ast.Node) bool {
		if call, ok := m.(*ast.CallExpr); ok && calleeName(call) == "subtle.ConstantTimeCompare" {
			found = true
		}
		return !found
	})
	return found
}

// mentionsDigest reports whether e refers to a stored digest (a .hash
// field) or the presented key's (sum), other than as a call's argument
// (subtle.ConstantTimeCompare(sum[:], ...) == 1 compares its result).
func mentionsDigest(e ast.Expr) bool {
	found := false
	ast.Inspect(e, func(m ast.Node) bool {
		switch m := m.(type) {
		case *ast.CallExpr:
			return false
		case *ast.SelectorExpr:
			found = found || m.Sel.Name == "hash"
		case *ast.Ident:
			found = found || m.Name == "sum"
		}
		return !found
	})
	return found
}

// exprString is a short rendering of e for messages.
func exprString(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return exprString(e.X) + "." + e.Sel.Name
	default:
		return "an expression"
	}
}
