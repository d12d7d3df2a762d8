"""`python -m hdvision.cli.hydra_train [overrides]`: what `hdvision train` runs. Its own module,
so that Lightning's DDP launcher starts the other ranks with the same command line."""

from hdvision.cli.entry import run

if __name__ == "__main__":
    run("train")
