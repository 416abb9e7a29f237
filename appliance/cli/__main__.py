from strongroom.appliance.cli import main

main()
