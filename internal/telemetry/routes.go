package telemetry

import (
	"net/http"
	"strings"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
)

// httpRoute is one google.api.http binding: a method and a path template
// such as "/v1/services/{service_id}/status", compiled for matching.
type httpRoute struct {
	method   string
	template string
	segments []string // literals, "*" (one segment) or "**" (the rest)
	verb     string   // after ':' in the last segment, or ""
}

// routeTable is the set of HTTP bindings the gateway serves.
type routeTable []httpRoute

// gatewayRoutes reads the HTTP bindings of every AccessService method from
// the generated descriptors, so that the route table can never drift from
// the gateway that the same protos generate.
func gatewayRoutes() routeTable {
	return routesFromFile(accessv1.File_radkit_access_v1_access_proto)
}

// routesFromFile returns the HTTP bindings of every method of every service
// in fd, additional bindings included.
func routesFromFile(fd protoreflect.FileDescriptor) routeTable {
	var t routeTable
	services := fd.Services()
	for i := range services.Len() {
		methods := services.Get(i).Methods()
		for j := range methods.Len() {
			rule, ok := proto.GetExtension(methods.Get(j).Options(), annotations.E_Http).(*annotations.HttpRule)
			if !ok || rule == nil {
				continue
			}
			t = t.add(rule)
			for _, extra := range rule.GetAdditionalBindings() {
				t = t.add(extra)
			}
		}
	}
	return t
}

// add appends the binding of rule, if it has a usable one.
func (t routeTable) add(rule *annotations.HttpRule) routeTable {
	var method, tmpl string
	switch p := rule.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		method, tmpl = http.MethodGet, p.Get
	case *annotations.HttpRule_Put:
		method, tmpl = http.MethodPut, p.Put
	case *annotations.HttpRule_Post:
		method, tmpl = http.MethodPost, p.Post
	case *annotations.HttpRule_Delete:
		method, tmpl = http.MethodDelete, p.Delete
	case *annotations.HttpRule_Patch:
		method, tmpl = http.MethodPatch, p.Patch
	case *annotations.HttpRule_Custom:
		method, tmpl = p.Custom.GetKind(), p.Custom.GetPath()
	}
	if r, ok := compileRoute(method, tmpl); ok {
		t = append(t, r)
	}
	return t
}

// compileRoute parses a google.api.http path template: literal segments,
// variables ({name}, {name=*}, {name=**}, {name=a/*/b}), wildcards and a
// final ":verb".
func compileRoute(method, tmpl string) (httpRoute, bool) {
	if method == "" || !strings.HasPrefix(tmpl, "/") {
		return httpRoute{}, false
	}
	r := httpRoute{method: method, template: tmpl}
	body := tmpl[1:]
	// The verb follows the last ':' that is outside a variable.
	if i := strings.LastIndexByte(body, ':'); i >= 0 && !strings.Contains(body[i:], "}") && !strings.Contains(body[i:], "/") {
		body, r.verb = body[:i], body[i+1:]
	}
	for seg := range strings.SplitSeq(expandVariables(body), "/") {
		if seg == "" {
			return httpRoute{}, false
		}
		r.segments = append(r.segments, seg)
	}
	return r, true
}

// expandVariables replaces each {name=pattern} by its pattern and each
// {name} by "*".
func expandVariables(s string) string {
	var b strings.Builder
	for {
		open := strings.IndexByte(s, '{')
		if open < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := strings.IndexByte(s[open:], '}')
		if end < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:open])
		v := s[open+1 : open+end]
		if _, pattern, ok := strings.Cut(v, "="); ok {
			b.WriteString(pattern)
		} else {
			b.WriteString("*")
		}
		s = s[open+end+1:]
	}
}

// match returns the template of the binding that serves r, or "".
func (t routeTable) match(r *http.Request) string {
	if r.URL == nil {
		return ""
	}
	path := r.URL.EscapedPath()
	if !strings.HasPrefix(path, "/") {
		return ""
	}
	for i := range t {
		if t[i].method == r.Method && t[i].matches(path[1:]) {
			return t[i].template
		}
	}
	return ""
}

// matches reports whether the escaped path (without its leading '/')
// matches the template.
func (r *httpRoute) matches(path string) bool {
	if r.verb != "" {
		var ok bool
		if path, ok = strings.CutSuffix(path, ":"+r.verb); !ok {
			return false
		}
	}
	parts := strings.Split(path, "/")
	for i, seg := range r.segments {
		switch {
		case seg == "**":
			return true
		case i >= len(parts):
			return false
		case seg == "*":
			if parts[i] == "" {
				return false
			}
		case parts[i] != seg:
			return false
		}
	}
	return len(parts) == len(r.segments)
}
