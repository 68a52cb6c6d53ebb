package main

import (
	"os"
	"syscall"
)

// forwardSignals: on Windows only an interrupt is caught. The console
// delivers Ctrl-C and Ctrl-Break to every process attached to it, the
// command included, so it is not passed on: dotlock waits for the command
// to end and then releases the lock.
var forwardSignals = []os.Signal{os.Interrupt}

// keeperIgnored are ignored by the keeper.
var keeperIgnored = []os.Signal{os.Interrupt}

// defaultShell runs c when $SHELL is not set.
func defaultShell(c string) []string { return []string{"cmd.exe", "/C", c} }

func signalNumber(os.Signal) int { return 2 }

func forward(*os.Process, os.Signal) {}

func terminalWidth(*os.File) (int, bool) { return 0, false }

func signalled(*os.ProcessState) (int, bool) { return 0, false }

// keeperAttr detaches the keeper from the console.
func keeperAttr() *syscall.SysProcAttr {
	const detachedProcess = 0x00000008
	return &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP | detachedProcess}
}

const keeperDir = ""

// setUmask: Windows has no umask.
func setUmask(int) int { return 0 }

// oNoFollow: os.OpenFile has no such flag on Windows; resolve refuses a
// symlink found at the path before and after.
const oNoFollow = 0
