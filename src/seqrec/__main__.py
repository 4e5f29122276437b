from seqrec.cli import main

main()
