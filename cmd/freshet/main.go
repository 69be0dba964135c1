// Command freshet is the Freshet binary: see `freshet --help`.
package main

import (
	"os"

	"github.com/freshetdev/freshet/cmd/freshet/cli"
	_ "time/tzdata" // partitions and schedules need IANA zones even where the OS has none
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
