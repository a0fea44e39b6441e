from aimctl.cli import main

main()
