from esbackup.cli import main

main()
