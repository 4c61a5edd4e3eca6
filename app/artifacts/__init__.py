"""Task artifacts: files a task produced (a browser agent's screenshots), with their
metadata in the store and their bytes under BIGTHREE_ARTIFACTS_DIR (default
`<data_dir>/artifacts/`)."""
