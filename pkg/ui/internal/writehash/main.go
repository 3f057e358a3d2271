// Command writehash records the hash of the dashboard's sources beside
// dist/ (make ui runs it after vite build).
//
//	go run ./pkg/ui/internal/writehash pkg/ui
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/kubectl-shark/kubectl-shark/pkg/ui/internal/srchash"
)

func main() {
	dir := "."
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	sum, err := srchash.Sum(dir)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, srchash.File), []byte(sum+"\n"), 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "writehash:", err)
		os.Exit(1)
	}
}
