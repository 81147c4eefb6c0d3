from binreplay.cli import main

main()
