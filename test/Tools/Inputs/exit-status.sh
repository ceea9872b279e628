#!/bin/sh
# Runs a command and prints "exit=<status>" after its output, so that a lit
# test can check the exact status: 1 for an error kvq reported, 128+N for a
# signal (a crash), 124 if it ran for more than 60 s (a hang, e.g. blocked
# on a FIFO).
#
#   sh %S/Inputs/exit-status.sh kvq-opt ... 2>&1 | FileCheck ...
timeout 60 "$@"
echo "exit=$?"
