package cli

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// pcapng block types that copyPcapng looks at.
const (
	blockSectionHeader  = 0x0A0D0D0A
	blockEnhancedPacket = 6
	blockSimplePacket   = 3
	byteOrderMagic      = 0x1A2B3C4D
	maxBlock            = 16 << 20
)

// copyPcapng copies a pcapng stream block by block, so that every write
// is a whole block (a reader of a pipe never sees half of one), and stops
// after limit packets when limit > 0. It returns the packets copied.
func copyPcapng(w io.Writer, r io.Reader, limit int) (int, error) {
	var order binary.ByteOrder = binary.LittleEndian
	buf := make([]byte, 64<<10)
	packets := 0
	for limit <= 0 || packets < limit {
		if _, err := io.ReadFull(r, buf[:12]); err != nil {
			if errors.Is(err, io.EOF) {
				return packets, nil
			}
			return packets, fmt.Errorf("reading pcapng: %w", err)
		}
		typ := binary.LittleEndian.Uint32(buf[:4])
		if typ == blockSectionHeader {
			switch binary.LittleEndian.Uint32(buf[8:12]) {
			case byteOrderMagic:
				order = binary.LittleEndian
			default:
				order = binary.BigEndian
			}
		} else {
			typ = order.Uint32(buf[:4])
		}
		n := int(order.Uint32(buf[4:8]))
		if n < 12 || n%4 != 0 || n > maxBlock {
			return packets, fmt.Errorf("reading pcapng: bad block length %d", n)
		}
		if n > len(buf) {
			nb := make([]byte, n)
			copy(nb, buf[:12])
			buf = nb
		}
		if _, err := io.ReadFull(r, buf[12:n]); err != nil {
			return packets, fmt.Errorf("reading pcapng: %w", err)
		}
		if _, err := w.Write(buf[:n]); err != nil {
			return packets, err
		}
		if typ == blockEnhancedPacket || typ == blockSimplePacket {
			packets++
		}
	}
	return packets, nil
}
