// Command sdskit runs the sdskit demo and protocol simulations.
//
//	sdskit demo        a group chat among participants over a lossy network, with a
//	                   participant restarted midway from its database; exits 0 only if
//	                   every participant converged to the same log
//	sdskit simulate    the protocol simulator with every knob exposed (see -h)
package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
)

// commands maps a subcommand name to its entry point; each subcommand registers itself
// from its own file's init, so subcommands stay independent of each other.
var commands = map[string]func(args []string) error{}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		usage()
		os.Exit(2)
	}
	if err := cmd(os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "sdskit:", err)
		os.Exit(1)
	}
}

func usage() {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(os.Stderr, "usage: sdskit %s [flags]   (sdskit <command> -h lists the flags)\n", strings.Join(names, "|"))
}
