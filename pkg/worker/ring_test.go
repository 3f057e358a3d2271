package worker

import "testing"

func TestRingShare(t *testing.T) {
	const mb = 1 << 20
	tests := []struct{ budget, n, max, block, want int }{
		{128 * mb, 0, 32 * mb, mb, 32 * mb},     // alone: the configured size
		{128 * mb, 3, 32 * mb, mb, 32 * mb},     // four fit in the budget
		{128 * mb, 7, 32 * mb, mb, 16 * mb},     // eight share it
		{128 * mb, 99, 32 * mb, mb, 4 * mb},     // a hundred: the floor
		{100 * mb, 2, 64 * mb, 3 * mb, 33 * mb}, // whole blocks
	}
	for _, tt := range tests {
		if got := ringShare(tt.budget, tt.n, tt.max, tt.block); got != tt.want {
			t.Errorf("ringShare(%d MiB, %d, %d MiB, %d MiB) = %d MiB, want %d MiB",
				tt.budget/mb, tt.n, tt.max/mb, tt.block/mb, got/mb, tt.want/mb)
		}
	}
}
