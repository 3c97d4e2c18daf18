"""Dataset readers: Flex-Modal protocol lists (CASIA-SURF / CeFA / WMCA layouts) and the
synthetic benchmark's crop folders."""
