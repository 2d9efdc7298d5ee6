from safestack.cli import main

main()
