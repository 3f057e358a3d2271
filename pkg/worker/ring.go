package worker

// minRingBlocks is the smallest ring a capture gets, in blocks: enough
// that the reader can hold one block while the kernel fills the others.
const minRingBlocks = 4

// ringShare is the kernel ring of a new capture when n captures run: an
// equal share of budget for n+1, in whole blocks, no bigger than max and
// no smaller than minRingBlocks blocks. Rings are kernel memory the Go
// heap budget does not see, so many pods on one node must share.
func ringShare(budget, n, max, block int) int {
	share := budget / (n + 1)
	share -= share % block
	return min(max, maxInt(share, minRingBlocks*block))
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}
