"""This folder holds scripts, not pytest tests: the seed's request scripts
(`python tests/test_mnist_cli_request.py IMAGE`, named as the original project names them)
and the container's own check (`python tests/check_web_api.py`). The test suite lives in
the repository's tests/ folder; pytest, even pointed here, collects nothing."""

collect_ignore_glob = ["*.py"]
