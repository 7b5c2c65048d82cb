complete --keep-order --exclusive --command kube-dc --arguments "(COMPLETE=fish kube-dc -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
