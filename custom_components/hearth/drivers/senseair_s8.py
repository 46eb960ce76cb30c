"""Senseair S8 NDIR CO2 sensor over Modbus RTU (9600 8N1), polled.

Address 0xFE reaches whichever single sensor is on the line. Input registers (0-based
addresses): IR1 = 0 meter status (bits 0-6 are error flags), IR4 = 3 CO2 in ppm. Holding
registers: HR1 = 0 acknowledgement flags (bit 5: background calibration done),
HR2 = 1 special command (0x7C06: background calibration to 400 ppm), HR32 = 31 ABC
period in hours (0 disables). Source: Senseair "Modbus on Senseair S8" (TDE2067).
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from .co2_calibration import check_calibration_target
from .errors import DriverError
from .modbus import (
    READ_HOLDING_REGISTERS,
    READ_INPUT_REGISTERS,
    ModbusSerialDriver,
    reply_format,
)
from .serial_framing import FrameFormat

ANY_ADDRESS = 0xFE

IR_METER_STATUS = 0
IR_CO2 = 3
HR_ACKNOWLEDGEMENT = 0
HR_SPECIAL_COMMAND = 1
HR_ABC_PERIOD = 31

BACKGROUND_CALIBRATION = 0x7C06
ACK_BACKGROUND_CALIBRATION = 0x0020
ABC_PERIOD_HOURS = 180

METER_STATUS_FLAGS = {
    0x01: "fatal error",
    0x02: "offset regulation error",
    0x04: "algorithm error",
    0x08: "output error",
    0x10: "self-diagnostics error",
    0x20: "out of range",
    0x40: "memory error",
}


class MeterStatusError(DriverError):
    """The sensor flags its own reading as unusable."""

    def __init__(self, model: str, status: int) -> None:
        self.status = status
        flags = [name for bit, name in METER_STATUS_FLAGS.items() if status & bit]
        super().__init__(
            f"{model} reports {', '.join(flags)} (meter status 0x{status:04X}); power-cycle "
            "the sensor, and replace it if the error persists"
        )


class SenseairS8(ModbusSerialDriver):
    """One read of IR1..IR4 per measurement: status and CO2 in the same reply."""

    model: ClassVar[str] = "Senseair S8"
    manufacturer: ClassVar[str] = "Senseair"
    quantities: ClassVar[tuple[str, ...]] = ("co2",)
    streaming: ClassVar[bool] = False
    address: ClassVar[int] = ANY_ADDRESS
    frame_format: ClassVar[FrameFormat] = reply_format(ANY_ADDRESS)

    async def measure(self, timeout: float) -> dict[str, float]:
        """Read meter status and CO2; raise MeterStatusError on any error flag."""
        registers = await self.read_registers(
            READ_INPUT_REGISTERS, IR_METER_STATUS, IR_CO2 + 1, timeout
        )
        status = registers[IR_METER_STATUS] & sum(METER_STATUS_FLAGS)
        if status:
            raise MeterStatusError(self.model, status)
        return {"co2": float(registers[IR_CO2])}

    async def set_abc(self, enabled: bool) -> None:
        """Automatic baseline correction every 180 h (the factory default), or never."""
        await self.write_register(HR_ABC_PERIOD, ABC_PERIOD_HOURS if enabled else 0)

    async def abc_period_hours(self) -> int:
        """The configured ABC period; 0 means disabled."""
        (period,) = await self.read_registers(READ_HOLDING_REGISTERS, HR_ABC_PERIOD, 1)
        return period

    async def background_calibrate(self, settle_seconds: float = 2.0) -> None:
        """Declare the current air to be 400 ppm; the sensor must be in fresh air.

        The sensor sets its acknowledgement flag once the calibration has run, which
        takes about two seconds.
        """
        await self.write_register(HR_ACKNOWLEDGEMENT, 0)
        await self.write_register(HR_SPECIAL_COMMAND, BACKGROUND_CALIBRATION)
        await asyncio.sleep(settle_seconds)
        (flags,) = await self.read_registers(READ_HOLDING_REGISTERS, HR_ACKNOWLEDGEMENT, 1)
        if not flags & ACK_BACKGROUND_CALIBRATION:
            raise DriverError(
                f"{self.model} did not confirm the background calibration (acknowledgement "
                f"flags 0x{flags:04X}); keep it in fresh air and try again"
            )

    async def calibrate(self, target_ppm: float) -> None:
        """Calibrate to `target_ppm`; only 400 ppm is supported (ValueError otherwise)."""
        check_calibration_target(self.model, target_ppm)
        await self.background_calibrate()
