package tracer

import (
	"debug/buildinfo"
	"debug/elf"
	"debug/gosym"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/arch/arm64/arm64asm"
	"golang.org/x/arch/x86/x86asm"
)

// OpenSSL (and BoringSSL) calls the tracer probes.
var sslSymbols = []string{"SSL_write", "SSL_read", "SSL_write_ex", "SSL_read_ex"}

// Go crypto/tls methods the tracer probes.
const (
	goWriteSymbol = "crypto/tls.(*Conn).Write"
	goReadSymbol  = "crypto/tls.(*Conn).Read"
)

// maxGoFunc bounds the bytes disassembled per function.
const maxGoFunc = 1 << 20

// Probes is what one executable file offers to the tracer. Offsets are file
// offsets, what uprobes take.
type Probes struct {
	// SSL maps the OpenSSL symbols found to their offsets.
	SSL map[string]uint64
	// Go is set for a Go binary that links crypto/tls.
	Go *GoProbes
	// GoSkipped says why a Go binary's crypto/tls is not probed.
	GoSkipped string
}

// Empty reports whether nothing in the file can be probed.
func (p *Probes) Empty() bool { return len(p.SSL) == 0 && p.Go == nil }

// GoProbes are the probe points of Go's crypto/tls in one binary.
type GoProbes struct {
	Version     string // go1.22.5
	Write, Read GoFunc
}

// GoFunc is one function's entry and every return instruction.
type GoFunc struct {
	Entry   uint64
	Returns []uint64
}

// Inspect finds the probe points of an ELF executable or shared library.
// The file comes from a container and is untrusted: a panic in the ELF,
// build info or pclntab readers is turned into an error.
func Inspect(r io.ReaderAt) (p *Probes, err error) {
	defer func() {
		if v := recover(); v != nil {
			p, err = nil, fmt.Errorf("malformed ELF file: %v", v)
		}
	}()
	return inspect(r)
}

func inspect(r io.ReaderAt) (*Probes, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return nil, fmt.Errorf("ELF type %v is not an executable or a library", f.Type)
	}
	p := &Probes{SSL: map[string]uint64{}}
	syms := functionSymbols(f)
	for _, name := range sslSymbols {
		if s, ok := syms[name]; ok && s.Value != 0 {
			if off, ok := fileOffset(f, s.Value); ok {
				p.SSL[name] = off
			}
		}
	}
	if f.Section(".go.buildinfo") != nil || f.Section(".gopclntab") != nil {
		p.Go, p.GoSkipped = inspectGo(r, f, syms)
	}
	return p, nil
}

// functionSymbols returns the named functions of the static and dynamic
// symbol tables.
func functionSymbols(f *elf.File) map[string]elf.Symbol {
	out := map[string]elf.Symbol{}
	for _, load := range []func() ([]elf.Symbol, error){f.Symbols, f.DynamicSymbols} {
		syms, err := load()
		if err != nil {
			continue
		}
		for _, s := range syms {
			if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Section != elf.SHN_UNDEF {
				if _, dup := out[s.Name]; !dup {
					out[s.Name] = s
				}
			}
		}
	}
	return out
}

// fileOffset maps a virtual address to its offset in the file, through the
// executable segment that loads it.
func fileOffset(f *elf.File, vaddr uint64) (uint64, bool) {
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 && vaddr >= p.Vaddr && vaddr-p.Vaddr < p.Filesz {
			return vaddr - p.Vaddr + p.Off, true
		}
	}
	return 0, false
}

func inspectGo(r io.ReaderAt, f *elf.File, syms map[string]elf.Symbol) (*GoProbes, string) {
	version := ""
	if bi, err := buildinfo.Read(r); err == nil {
		version = bi.GoVersion
	}
	if version != "" && !registerABI(version) {
		return nil, version + " predates the register ABI (Go 1.17)"
	}
	write, werr := goFunc(f, syms, goWriteSymbol)
	read, rerr := goFunc(f, syms, goReadSymbol)
	switch {
	case errors.Is(werr, errNoFunc) && errors.Is(rerr, errNoFunc):
		return nil, "" // a Go binary without crypto/tls
	case werr != nil:
		return nil, werr.Error()
	case rerr != nil:
		return nil, rerr.Error()
	}
	return &GoProbes{Version: version, Write: write, Read: read}, ""
}

// registerABI reports whether a Go version ("go1.21.3", "go1.24rc1",
// "devel ...") passes arguments in registers: 1.17 and later.
func registerABI(v string) bool {
	rest, ok := strings.CutPrefix(v, "go1.")
	if !ok {
		return true // devel builds are recent
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	minor, err := strconv.Atoi(rest[:end])
	return err == nil && minor >= 17
}

var errNoFunc = errors.New("function not found")

// goFunc locates a function by the symbol table, or by the pclntab of a
// stripped binary, and finds its return instructions.
func goFunc(f *elf.File, syms map[string]elf.Symbol, name string) (GoFunc, error) {
	start, end, err := goFuncBounds(f, syms, name)
	if err != nil {
		return GoFunc{}, err
	}
	if end <= start || end-start > maxGoFunc {
		return GoFunc{}, fmt.Errorf("%s: implausible size %d", name, end-start)
	}
	code, err := readVirtual(f, start, end-start)
	if err != nil {
		return GoFunc{}, fmt.Errorf("%s: %w", name, err)
	}
	rets, err := returnOffsets(f.Machine, code)
	if err != nil {
		return GoFunc{}, fmt.Errorf("%s: %w", name, err)
	}
	if len(rets) == 0 {
		return GoFunc{}, fmt.Errorf("%s: no return instruction", name)
	}
	entry, ok := fileOffset(f, start)
	if !ok {
		return GoFunc{}, fmt.Errorf("%s: address %#x is in no executable segment", name, start)
	}
	fn := GoFunc{Entry: entry, Returns: make([]uint64, len(rets))}
	for i, r := range rets {
		fn.Returns[i] = entry + r
	}
	return fn, nil
}

func goFuncBounds(f *elf.File, syms map[string]elf.Symbol, name string) (start, end uint64, err error) {
	if s, ok := syms[name]; ok && s.Size > 0 {
		return s.Value, s.Value + s.Size, nil
	}
	tab, err := pclnTable(f)
	if err != nil {
		return 0, 0, errNoFunc
	}
	fn := tab.LookupFunc(name)
	if fn == nil {
		return 0, 0, errNoFunc
	}
	return fn.Entry, fn.End, nil
}

// pclnTable reads the function table every Go binary keeps for its
// runtime, stripped or not.
func pclnTable(f *elf.File) (*gosym.Table, error) {
	pcln := f.Section(".gopclntab")
	text := f.Section(".text")
	if pcln == nil || text == nil {
		return nil, errNoFunc
	}
	if pcln.Size > 256<<20 {
		return nil, fmt.Errorf(".gopclntab of %d bytes", pcln.Size)
	}
	data, err := pcln.Data()
	if err != nil {
		return nil, err
	}
	return gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr))
}

// readVirtual reads n bytes at a virtual address from the section holding
// them.
func readVirtual(f *elf.File, addr, n uint64) ([]byte, error) {
	for _, s := range f.Sections {
		if s.Type == elf.SHT_PROGBITS && addr >= s.Addr && addr+n <= s.Addr+s.Size {
			buf := make([]byte, n)
			if _, err := s.ReadAt(buf, int64(addr-s.Addr)); err != nil {
				return nil, err
			}
			return buf, nil
		}
	}
	return nil, fmt.Errorf("address %#x+%d is in no section", addr, n)
}

// returnOffsets disassembles a function and returns the offsets of its
// return instructions. A uprobe must sit on an instruction boundary, so
// anything undecodable fails the whole function rather than guess.
func returnOffsets(m elf.Machine, code []byte) ([]uint64, error) {
	switch m {
	case elf.EM_X86_64:
		return x86Returns(code)
	case elf.EM_AARCH64:
		return arm64Returns(code)
	}
	return nil, fmt.Errorf("machine %v is not supported", m)
}

func x86Returns(code []byte) ([]uint64, error) {
	var out []uint64
	for off := 0; off < len(code); {
		inst, err := x86asm.Decode(code[off:], 64)
		// A truncated instruction decodes to Op 0 without an error.
		if err != nil || inst.Len == 0 || inst.Op == 0 {
			// Go pads functions with INT3 up to the next one.
			if allPadding(code[off:]) {
				break
			}
			return nil, fmt.Errorf("undecodable instruction at +%#x", off)
		}
		if inst.Op == x86asm.RET {
			out = append(out, uint64(off))
		}
		off += inst.Len
	}
	return out, nil
}

func allPadding(b []byte) bool {
	for _, c := range b {
		if c != 0xcc && c != 0x90 && c != 0 {
			return false
		}
	}
	return true
}

func arm64Returns(code []byte) ([]uint64, error) {
	var out []uint64
	for off := 0; off+4 <= len(code); off += 4 {
		inst, err := arm64asm.Decode(code[off : off+4])
		if err != nil {
			continue // fixed-width: a word that is data does not shift the rest
		}
		if inst.Op == arm64asm.RET {
			out = append(out, uint64(off))
		}
	}
	return out, nil
}
