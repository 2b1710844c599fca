package dataform

import (
	"reflect"
	"testing"

	"github.com/xmppd/xmppd/protocol/xmlstream"
)

func parse(t testing.TB, s string) *xmlstream.Node {
	t.Helper()
	n, err := xmlstream.ParseNode(s, "jabber:client")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestParse(t *testing.T) {
	tests := []struct {
		name, in string
		want     Form
	}{
		{"empty", `<x xmlns='jabber:x:data' type='submit'/>`, Form{Type: "submit", Values: map[string][]string{}}},
		{"form type and fields", `<x xmlns='jabber:x:data' type='submit'>
			<field var='FORM_TYPE' type='hidden'><value>urn:t</value></field>
			<field var='a'><value>1</value></field>
			<field var='m' type='list-multi'><value>x</value><value>y</value></field>
			<field var='e'/></x>`,
			Form{Type: "submit", FormType: "urn:t", Vars: []string{"a", "m", "e"},
				Values: map[string][]string{"a": {"1"}, "m": {"x", "y"}, "e": {}}}},
		{"no var ignored, duplicate keeps first", `<x xmlns='jabber:x:data' type='submit'>
			<field type='fixed'><value>note</value></field>
			<field var='a'><value>1</value></field><field var='a'><value>2</value></field></x>`,
			Form{Type: "submit", Vars: []string{"a"}, Values: map[string][]string{"a": {"1"}}}},
		{"escaped text", `<x xmlns='jabber:x:data' type='submit'><field var='t'><value>a &amp; b</value></field></x>`,
			Form{Type: "submit", Vars: []string{"t"}, Values: map[string][]string{"t": {"a & b"}}}},
		{"other namespace fields ignored", `<x xmlns='jabber:x:data' type='submit'><field xmlns='urn:other' var='t'/></x>`,
			Form{Type: "submit", Values: map[string][]string{}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Parse(parse(t, tc.in))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestBool(t *testing.T) {
	f := Parse(parse(t, `<x xmlns='jabber:x:data' type='submit'><field var='a'><value>true</value></field>
		<field var='b'><value>0</value></field><field var='c'><value>yes</value></field></x>`))
	for _, tc := range []struct {
		v         string
		val, okay bool
	}{{"a", true, true}, {"b", false, true}, {"c", false, false}, {"d", false, false}} {
		if val, ok := f.Bool(tc.v); val != tc.val || ok != tc.okay {
			t.Errorf("Bool(%q) = %v, %v; want %v, %v", tc.v, val, ok, tc.val, tc.okay)
		}
	}
}

func TestBuilderRoundTrip(t *testing.T) {
	s := New("form", "urn:t").Title("T <1>").Field("a", "text-single", "A & B", "v'1").
		FieldOptions("l", "list-single", "", []string{"x", "y"}, "y").Bool("b", "", true).String()
	n := parse(t, s)
	f := Parse(n)
	want := Form{Type: "form", FormType: "urn:t", Vars: []string{"a", "l", "b"},
		Values: map[string][]string{"a": {"v'1"}, "l": {"y"}, "b": {"1"}}}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("round trip: got %+v, want %+v (%s)", f, want, s)
	}
	if n.Child(NS, "title").TextContent() != "T <1>" {
		t.Errorf("title lost: %s", s)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(`<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>u</value></field><field var='a'><value>1</value></field></x>`)
	f.Add(`<x xmlns='jabber:x:data'><field/><field var=''/><field var='a'><value/></field></x>`)
	f.Fuzz(func(t *testing.T, s string) {
		n, err := xmlstream.ParseNode(s, "jabber:client")
		if err != nil {
			return
		}
		form := Parse(n)
		if len(form.Vars) != len(form.Values) {
			t.Fatalf("vars %v and values %v disagree", form.Vars, form.Values)
		}
		// What we write we read back the same.
		b := New("submit", form.FormType)
		for _, v := range form.Vars {
			b.Field(v, "", "", form.Values[v]...)
		}
		again := Parse(parse(t, b.String()))
		if again.FormType != form.FormType || !reflect.DeepEqual(again.Vars, form.Vars) {
			t.Fatalf("round trip changed the form: %+v → %+v", form, again)
		}
	})
}
