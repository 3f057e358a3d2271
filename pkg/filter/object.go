package filter

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// object shows a struct of pkg/entry to CEL as a map keyed by the fields'
// JSON names, without copying it: each field is converted when an
// expression reads it. Scalar fields are always present (with their zero
// value when empty); nested objects, lists and maps only when set. An
// object over a nil pointer has no fields at all, which is what makes
// `dns.qname.endsWith(...)` simply false on an HTTP entry.
type object struct {
	v    reflect.Value // the struct; invalid for a nil pointer
	info *structInfo
}

var (
	_ traits.Mapper = (*object)(nil)

	// objectType is the CEL type objects report: they behave as maps.
	objectType = types.MapType
)

// structInfo indexes the fields of one struct type by JSON name.
type structInfo struct {
	typ    reflect.Type
	names  []string // in declaration order, for iteration
	fields map[string]fieldInfo
}

type fieldInfo struct {
	index int
	kind  fieldKind
}

type fieldKind uint8

const (
	kindString fieldKind = iota
	kindBool
	kindInt
	kindUint
	kindTime
	kindStruct  // a struct held by value
	kindPointer // a pointer to a struct
	kindStringMap
	kindStringList
	kindStructList
)

var infos sync.Map // reflect.Type -> *structInfo

// infoOf returns the field index of a struct type, built once.
func infoOf(t reflect.Type) *structInfo {
	if i, ok := infos.Load(t); ok {
		return i.(*structInfo)
	}
	si := &structInfo{typ: t, fields: make(map[string]fieldInfo, t.NumField())}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		si.names = append(si.names, name)
		si.fields[name] = fieldInfo{index: i, kind: kindOf(f.Type)}
	}
	i, _ := infos.LoadOrStore(t, si)
	return i.(*structInfo)
}

var timeType = reflect.TypeFor[time.Time]()

func kindOf(t reflect.Type) fieldKind {
	switch {
	case t == timeType:
		return kindTime
	case t.Kind() == reflect.String:
		return kindString
	case t.Kind() == reflect.Bool:
		return kindBool
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64,
		t.Kind() >= reflect.Uint8 && t.Kind() <= reflect.Uint32:
		return kindInt // every count and code fits an int64
	case t.Kind() == reflect.Uint || t.Kind() == reflect.Uint64:
		return kindUint
	case t.Kind() == reflect.Struct:
		return kindStruct
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct:
		return kindPointer
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.String:
		return kindStringMap
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return kindStringList
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		return kindStructList
	}
	panic("filter: unsupported field type " + t.String()) // caught by the tests over every entry type
}

// newObject wraps a struct or a pointer to one.
func newObject(v reflect.Value) *object {
	if v.Kind() == reflect.Pointer {
		o := &object{info: infoOf(v.Type().Elem())}
		if !v.IsNil() {
			o.v = v.Elem()
		}
		return o
	}
	return &object{v: v, info: infoOf(v.Type())}
}

// field returns the value of the field named name, and whether it is
// present. With always, a nil or empty field is returned as an empty
// value rather than absent; top-level variables use it, since a declared
// variable must resolve.
func (o *object) field(name string, always bool) (ref.Val, bool) {
	f, ok := o.info.fields[name]
	if !ok || (!o.v.IsValid() && !always) {
		return nil, false
	}
	var fv reflect.Value
	if o.v.IsValid() {
		fv = o.v.Field(f.index)
	} else {
		fv = reflect.Zero(o.info.typ.Field(f.index).Type)
	}
	switch f.kind {
	case kindString:
		return types.String(fv.String()), true
	case kindBool:
		return types.Bool(fv.Bool()), true
	case kindInt:
		if fv.CanInt() {
			return types.Int(fv.Int()), true
		}
		return types.Int(int64(fv.Uint())), true
	case kindUint:
		return types.Uint(fv.Uint()), true
	case kindTime:
		return types.Timestamp{Time: fv.Interface().(time.Time)}, true
	case kindStruct:
		return newObject(fv), true
	case kindPointer:
		return newObject(fv), !fv.IsNil() || always
	case kindStringMap:
		return types.NewStringStringMap(adapter, fv.Interface().(map[string]string)), fv.Len() > 0 || always
	case kindStringList:
		return types.NewStringList(adapter, fv.Interface().([]string)), fv.Len() > 0 || always
	case kindStructList:
		return types.NewDynamicList(adapter, fv.Interface()), fv.Len() > 0 || always
	}
	return nil, false
}

// present lists the names of the fields present, in declaration order.
func (o *object) present() []string {
	var names []string
	for _, n := range o.info.names {
		if _, ok := o.field(n, false); ok {
			names = append(names, n)
		}
	}
	return names
}

func (o *object) Find(key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		return types.ValOrErr(key, "no such overload"), false
	}
	return o.field(string(k), false)
}

func (o *object) Get(key ref.Val) ref.Val {
	if v, ok := o.Find(key); ok {
		return v
	} else if v != nil {
		return v
	}
	return types.NewErr("no such key: %v", key)
}

func (o *object) Contains(key ref.Val) ref.Val {
	_, ok := o.Find(key)
	return types.Bool(ok)
}

func (o *object) Size() ref.Val { return types.Int(len(o.present())) }

func (o *object) Iterator() traits.Iterator {
	return types.NewStringList(adapter, o.present()).(traits.Iterable).Iterator()
}

func (o *object) ConvertToNative(t reflect.Type) (any, error) {
	if o.v.IsValid() && o.v.Type() == t {
		return o.v.Interface(), nil
	}
	return nil, fmt.Errorf("filter: cannot convert %s to %v", o.info.typ, t)
}

func (o *object) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return objectType
	}
	if t.TypeName() == objectType.TypeName() {
		return o
	}
	return types.NewErr("type conversion error from map to '%s'", t)
}

func (o *object) Equal(other ref.Val) ref.Val {
	p, ok := other.(*object)
	if !ok || p.info != o.info || o.v.IsValid() != p.v.IsValid() {
		return types.False
	}
	return types.Bool(!o.v.IsValid() || reflect.DeepEqual(o.v.Interface(), p.v.Interface()))
}

func (o *object) Type() ref.Type { return objectType }

func (o *object) Value() any {
	if !o.v.IsValid() {
		return nil
	}
	return o.v.Interface()
}

// typeAdapter lets CEL see structs of pkg/entry (list elements) as
// objects, and leaves every other value to the default adapter.
type typeAdapter struct{}

var adapter types.Adapter = typeAdapter{}

func (typeAdapter) NativeToValue(v any) ref.Val {
	if rv, ok := v.(ref.Val); ok {
		return rv
	}
	switch rv := reflect.ValueOf(v); {
	case rv.Kind() == reflect.Struct && rv.Type() != timeType,
		rv.Kind() == reflect.Pointer && rv.Type().Elem().Kind() == reflect.Struct && rv.Type().Elem() != timeType:
		return newObject(rv)
	}
	return types.DefaultTypeAdapter.NativeToValue(v)
}

var entryInfo = infoOf(reflect.TypeFor[entry.Entry]())

func reflectEntry(e *entry.Entry) reflect.Value { return reflect.ValueOf(e).Elem() }
