"""bpnet's test suite (a package: modules import shared helpers from ``.helpers``)."""
