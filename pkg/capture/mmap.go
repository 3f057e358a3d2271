package capture

// Mapper is implemented by the sources of Open: Mapped reports whether the
// packets lie in a mapped file, whose bytes fault if the file shrinks.
type Mapper interface {
	Mapped() bool
}

// FaultError returns the error for r, a value recovered from a panic, when
// it is a memory fault (with debug.SetPanicOnFault): a mapped capture file
// shrank while being read. It returns nil for anything else, which the
// caller panics with again.
func FaultError(r any) error {
	if _, ok := r.(interface{ Addr() uintptr }); ok {
		return ErrFileChanged
	}
	return nil
}
