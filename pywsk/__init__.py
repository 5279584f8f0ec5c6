"""pywsk: a command-line client for pywhisk that follows Apache OpenWhisk's `wsk` CLI.

Commands, flags, `~/.wskprops` handling, output lines and exit codes mirror apache/openwhisk-cli so that OpenWhisk
users feel at home. Only the standard library is used, and modules are imported lazily to keep start-up fast.
"""

__version__ = "0.1.0"
