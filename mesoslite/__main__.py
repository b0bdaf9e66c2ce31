"""Entry point of the `mesoslite` executable."""

from mesoslite.cli import main

if __name__ == "__main__":
    main()
