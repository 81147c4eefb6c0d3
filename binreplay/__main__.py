from binreplay.cli.main import main

main()
