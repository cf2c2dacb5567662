"""moviemind index builder: catalog sources -> documents -> embeddings -> index bundle -> publish."""
